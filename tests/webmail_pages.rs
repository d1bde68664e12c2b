//! The webmail's pages over real HTTP on both engines: who may read what, the headers
//! every page carries, downloads, search and pages, the admin page.

use crate::common;
use crate::webmail_support;

use common::{Engine, TestApp};
use mailroom::email::EmailId;
use mailroom::store::Role;
use webmail_support::{Client, add_user, email_to, frame_src};

async fn app_with_ana(engine: Engine) -> TestApp {
    let app = TestApp::spawn(engine).await;
    add_user(&app, "ana@puntoa.ar", Role::User, &["ventas@puntoa.ar"]).await;
    app
}

async fn a_user_cannot_reach_another_users_mail(engine: Engine) {
    let app = app_with_ana(engine).await;
    add_user(&app, "luis@puntoa.ar", Role::User, &["luis@puntoa.ar"]).await;
    let attachment =
        serde_json::json!([{"type": "text/plain", "name": "a.txt", "content": "aGVsbG8="}]);
    let id = app
        .deliver(email_to(
            "ventas@puntoa.ar",
            "Para ventas",
            "<p>secret</p>",
            attachment,
        ))
        .await;
    let mut ana = Client::logged_in(&app, "ana@puntoa.ar").await;
    let page = ana.get(&format!("/view/{id}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let body_src = frame_src(&html);

    let mut luis = Client::logged_in(&app, "luis@puntoa.ar").await;
    let unknown = EmailId::generate(chrono::Utc::now()).to_string();
    let unknown_page = luis.get(&format!("/view/{unknown}")).await;
    assert_eq!(unknown_page.status(), 404);
    let unknown_text = unknown_page.text().await.unwrap();
    for path in [
        format!("/view/{id}"),
        format!("/ui/download/{id}/attachments/0"),
        format!("/ui/original/{id}"),
        "/?mailbox=ventas%40puntoa.ar".to_owned(),
    ] {
        let response = luis.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        if path.starts_with("/view") {
            assert_eq!(
                response.text().await.unwrap(),
                unknown_text,
                "same as an unknown id"
            );
        }
    }
    let list = luis.get("/").await.text().await.unwrap();
    assert!(!list.contains("Para ventas"));
    // The body needs a valid signature; a tampered one or none is refused.
    assert_eq!(luis.get(&format!("/ui/body/{id}")).await.status(), 403);
    let tampered = body_src.replace("&s=", "&s=00");
    assert_eq!(luis.get(&tampered).await.status(), 403);
    assert_eq!(
        luis.get(&body_src).await.status(),
        200,
        "the signed URL itself works"
    );
}

async fn every_page_carries_the_security_headers(engine: Engine) {
    let app = app_with_ana(engine).await;
    let id = app
        .deliver(email_to(
            "ventas@puntoa.ar",
            "Hola",
            "<p>hi</p>",
            serde_json::json!([]),
        ))
        .await;
    let mut client = Client::logged_in(&app, "ana@puntoa.ar").await;
    for path in [
        "/",
        "/login",
        &format!("/view/{id}"),
        "/change-password",
        "/nowhere",
    ] {
        let response = client.get(path).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
    }
    // The reading view frames the body sandboxed, never with scripts or same-origin.
    let html = client
        .get(&format!("/view/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let iframe = html
        .split("<iframe")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        iframe.contains("sandbox=\"allow-popups allow-popups-to-escape-sandbox\""),
        "{iframe}"
    );
    assert!(!iframe.contains("allow-scripts") && !iframe.contains("allow-same-origin"));
    assert!(!html.contains("<script>"), "no inline script");
    for handler in ["onclick=", "onload=", "onerror=", "onsubmit="] {
        assert!(!html.contains(handler), "no inline handler {handler}");
    }
    let body = client.get(&frame_src(&html)).await;
    let csp = body.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'unsafe-inline'; img-src 'self';"),
        "{csp}"
    );
    assert!(csp.contains("sandbox"), "{csp}");
}

async fn attachments_download_with_the_apis_dispositions(engine: Engine) {
    let app = app_with_ana(engine).await;
    // An HTML attachment (the Roundcube 2024 class): downloaded, never rendered.
    let attachments = serde_json::json!([
        {"type": "text/html", "name": "invoice.html", "content": "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="}
    ]);
    let id = app
        .deliver(email_to(
            "ventas@puntoa.ar",
            "Factura",
            "<p>see</p>",
            attachments,
        ))
        .await;
    let mut client = Client::logged_in(&app, "ana@puntoa.ar").await;
    let page = client
        .get(&format!("/view/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("invoice.html") && page.contains("SPF: pass") && page.contains("DKIM: fail")
    );
    assert!(
        !page.contains("class=\"thumbnail\""),
        "no thumbnail for HTML"
    );
    let response = client
        .get(&format!("/ui/download/{id}/attachments/0"))
        .await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(
        header("content-disposition"),
        "attachment; filename=\"invoice.html\""
    );
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; sandbox"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
}

async fn the_list_searches_and_pages_by_keyset(engine: Engine) {
    let app = app_with_ana(engine).await;
    for n in 0..52 {
        app.deliver(email_to(
            "ventas@puntoa.ar",
            &format!("Pedido {n:02}"),
            "<p>x</p>",
            serde_json::json!([]),
        ))
        .await;
    }
    let mut client = Client::logged_in(&app, "ana@puntoa.ar").await;
    let first = client.get("/").await.text().await.unwrap();
    assert_eq!(first.matches("class=\"row unread\"").count(), 50);
    let next = link(&first, "next");
    let second = client.get(&next).await.text().await.unwrap();
    assert_eq!(second.matches("class=\"row unread\"").count(), 2, "{next}");
    assert!(second.contains("Pedido 00") && !first.contains("Pedido 00"));
    // And back: the newer page is the first one again.
    let newer = link(&second, "prev");
    let back = client.get(&newer).await.text().await.unwrap();
    assert_eq!(back.matches("class=\"row unread\"").count(), 50, "{newer}");
    assert!(
        back.contains("Pedido 51") && back.contains("Pedido 02") && !back.contains("Pedido 01")
    );
    assert!(
        !back.contains("rel=\"prev\""),
        "no newer page before the first"
    );
    let found = client
        .get("/?q=subject%3A%22Pedido%2007%22")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(found.matches("class=\"row unread\"").count(), 1);
    let broken = client.get("/?folder=bogus").await;
    assert_eq!(broken.status(), 400);
    assert!(broken.text().await.unwrap().contains("That link is broken"));
    let bad = client.get("/?q=before%3Anot-a-date").await;
    assert_eq!(bad.status(), 200);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("could not be understood")
    );
}

/// The `href` of the link with this `rel`, unescaped.
fn link(html: &str, rel: &str) -> String {
    let before = html.split(&format!("rel=\"{rel}\"")).next().unwrap();
    let href = before
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    href.replace("&#38;", "&").replace("&amp;", "&")
}

async fn only_admins_manage_users_and_never_their_own_role(engine: Engine) {
    let app = app_with_ana(engine).await;
    add_user(&app, "boss@puntoa.ar", Role::Admin, &[]).await;
    let mut ana = Client::logged_in(&app, "ana@puntoa.ar").await;
    assert_eq!(ana.get("/admin/users").await.status(), 403);
    let mut boss = Client::logged_in(&app, "boss@puntoa.ar").await;
    let token = boss.csrf("/admin/users").await;
    let own = boss
        .post(
            "/admin/users",
            &[
                ("csrf", &token),
                ("action", "make-user"),
                ("login", "boss@puntoa.ar"),
            ],
        )
        .await;
    assert!(own.text().await.unwrap().contains("cannot change your own"));
    let added = boss
        .post(
            "/admin/users",
            &[
                ("csrf", &token),
                ("action", "add"),
                ("login", "luis@puntoa.ar"),
                ("addresses", "*@puntoa.ar"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(added.contains("Created luis@puntoa.ar"), "{added}");
    let users = mailroom::store::open_users(&app.database.url)
        .await
        .unwrap();
    let luis = users.user("luis@puntoa.ar").await.unwrap().unwrap();
    assert_eq!(luis.addresses, ["*@puntoa.ar"]);
    assert_eq!(
        users.user("boss@puntoa.ar").await.unwrap().unwrap().role,
        Role::Admin
    );
    users.close().await;
}

engine_tests!(
    a_user_cannot_reach_another_users_mail,
    every_page_carries_the_security_headers,
    attachments_download_with_the_apis_dispositions,
    the_list_searches_and_pages_by_keyset,
    only_admins_manage_users_and_never_their_own_role,
);
