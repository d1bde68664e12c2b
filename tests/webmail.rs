//! The webmail over real HTTP on both engines: sessions, CSRF, lockout, redirects,
//! who may read what, the setup link, and the headers every page carries.

mod common;
mod webmail_support;

use common::{Engine, TestApp, UNLIMITED};
use mailroom::email::EmailId;
use mailroom::store::Role;
use webmail_support::{Client, PASSWORD, add_user, csrf_in, email_to, frame_src, location};

async fn app_with_ana(engine: Engine) -> TestApp {
    let app = TestApp::spawn(engine).await;
    add_user(&app, "ana@puntoa.ar", Role::User, &["ventas@puntoa.ar"]).await;
    app
}

async fn a_login_rotates_the_session_and_logout_ends_it(engine: Engine) {
    let app = app_with_ana(engine).await;
    let mut client = Client::new(&app);
    // A session id planted before login (fixation) must not survive it.
    client
        .cookies
        .insert("mailroom_session".into(), "a".repeat(64));
    let response = client.login("ana@puntoa.ar", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("mailroom_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let first = client.cookies["mailroom_session"].clone();
    assert_ne!(first, "a".repeat(64));
    assert_eq!(first.len(), 64);
    assert_eq!(client.get("/").await.status(), 200);

    // Logging in again, with the first session, rotates it: the first dies.
    let token = client.csrf("/").await;
    let again = client
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("email", "ana@puntoa.ar"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status(), 303);
    let second = client.cookies["mailroom_session"].clone();
    assert_ne!(second, first);
    let mut stale = Client::new(&app);
    stale.cookies.insert("mailroom_session".into(), first);
    assert_eq!(location(&stale.get("/").await), "/login?next=%2F");

    let token = client.csrf("/").await;
    let response = client.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(response.status(), 303);
    assert!(
        !client.cookies.contains_key("mailroom_session"),
        "the cookie is cleared"
    );
    let mut after = Client::new(&app);
    after.cookies.insert("mailroom_session".into(), second);
    let response = after.get("/").await;
    assert_eq!(
        response.status(),
        303,
        "the session is gone from the server"
    );
}

async fn a_post_without_the_right_csrf_token_changes_nothing(engine: Engine) {
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
    let path = format!("/view/{id}/flags");
    for token in [None, Some("0".repeat(64))] {
        let form: Vec<(&str, &str)> = match &token {
            Some(token) => vec![("csrf", token), ("action", "star")],
            None => vec![("action", "star")],
        };
        let response = client.post(&path, &form).await;
        assert_eq!(response.status(), 403, "token {token:?}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("nothing was changed")
        );
    }
    let starred = |app: &TestApp| {
        let store = app.store.clone();
        let id: EmailId = id.parse().unwrap();
        async move { store.mail_state().mailboxes_of(id).await.unwrap()[0].starred }
    };
    assert!(!starred(&app).await);
    let token = client.csrf(&format!("/view/{id}")).await;
    let response = client
        .post(&path, &[("csrf", &token), ("action", "star")])
        .await;
    assert_eq!(response.status(), 303);
    assert!(starred(&app).await);
    // The login form is protected too: a POST without the pre-session token is refused.
    let mut anonymous = Client::new(&app);
    let response = anonymous
        .post(
            "/login",
            &[("email", "ana@puntoa.ar"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 403);
}

async fn failed_logins_lock_the_client_out_apart_from_api_keys(engine: Engine) {
    let mut vars = UNLIMITED.to_vec();
    vars.push(("LOCKOUT_MAX_FAILURES", "3"));
    let app = TestApp::spawn_with(engine, &vars).await;
    add_user(&app, "ana@puntoa.ar", Role::User, &["ventas@puntoa.ar"]).await;
    let mut client = Client::new(&app);
    for _ in 0..3 {
        let response = client.login("ana@puntoa.ar", "wrong password!").await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Wrong email or password")
        );
    }
    let response = client.login("ana@puntoa.ar", PASSWORD).await;
    assert_eq!(response.status(), 429, "locked out, right password or not");
    // Separate counters: the API key still works from the same IP.
    assert_eq!(app.get("/emails").await.status(), 200);
}

async fn the_target_after_login_is_a_local_path_only(engine: Engine) {
    let app = app_with_ana(engine).await;
    for (next, expected) in [
        ("%2Fview%2Fabc", "/view/abc"),
        ("%2F%2Fevil.example%2F", "/"),
        ("%2F%5Cevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
    ] {
        let mut client = Client::new(&app);
        let token = client.csrf("/login").await;
        let response = client
            .post(
                &format!("/login?next={next}"),
                &[
                    ("csrf", &token),
                    ("email", "ana@puntoa.ar"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), expected, "next={next}");
    }
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

async fn cookies_are_secure_behind_an_https_proxy_only(engine: Engine) {
    let app = app_with_ana(engine).await;
    let mut client = Client::new(&app);
    client.headers.push(("x-forwarded-proto", "https".into()));
    let response = client.login("ana@puntoa.ar", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-mailroom="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"));
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(client.get("/").await.status(), 200);

    // From a peer that is not a trusted proxy, the header is not believed.
    let mut vars = UNLIMITED.to_vec();
    vars.push(("TRUSTED_PROXIES", "192.0.2.1"));
    let untrusted = TestApp::spawn_with(engine, &vars).await;
    add_user(&untrusted, "ana@puntoa.ar", Role::User, &[]).await;
    let mut client = Client::new(&untrusted);
    client.headers.push(("x-forwarded-proto", "https".into()));
    let response = client.login("ana@puntoa.ar", PASSWORD).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("mailroom_session=") && !cookie.contains("Secure"),
        "{cookie}"
    );
}

async fn the_setup_link_creates_the_first_admin_once(engine: Engine) {
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::spawn(engine).await;
    let file = app.database.data_dir().join("setup-link");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let link = std::fs::read_to_string(&file).unwrap();
    let base = app.webmail_address.clone().unwrap();
    let path = link
        .trim()
        .strip_prefix(&format!("{base}/"))
        .expect("a link to this webmail");
    let path = format!("/{path}");
    let mut client = Client::new(&app);
    assert_eq!(client.get("/setup?token=0000").await.status(), 404);
    let html = client.get(&path).await.text().await.unwrap();
    let token = csrf_in(&html);
    let short = client
        .post(
            &path,
            &[
                ("csrf", &token),
                ("email", "boss@puntoa.ar"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status(), 200);
    assert!(short.text().await.unwrap().contains("at least 10"));
    let created = client
        .post(
            &path,
            &[
                ("csrf", &token),
                ("email", "boss@puntoa.ar"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    assert!(!file.exists(), "the link file is removed");
    let again = client
        .post(
            &path,
            &[
                ("csrf", &token),
                ("email", "evil@puntoa.ar"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status(), 404, "the token is dead");
    let admin = Client::logged_in(&app, "boss@puntoa.ar").await;
    drop(admin);
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

async fn a_password_change_ends_every_other_session(engine: Engine) {
    let app = app_with_ana(engine).await;
    let mut here = Client::logged_in(&app, "ana@puntoa.ar").await;
    let mut there = Client::logged_in(&app, "ana@puntoa.ar").await;
    let token = here.csrf("/change-password").await;
    let response = here
        .post(
            "/change-password",
            &[
                ("csrf", &token),
                ("current", PASSWORD),
                ("password", "a new long password"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("was changed"));
    assert_eq!(
        here.get("/").await.status(),
        200,
        "this browser has a fresh session"
    );
    assert_eq!(
        there.get("/").await.status(),
        303,
        "the other one is logged out"
    );
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
    a_login_rotates_the_session_and_logout_ends_it,
    a_post_without_the_right_csrf_token_changes_nothing,
    failed_logins_lock_the_client_out_apart_from_api_keys,
    the_target_after_login_is_a_local_path_only,
    a_user_cannot_reach_another_users_mail,
    cookies_are_secure_behind_an_https_proxy_only,
    the_setup_link_creates_the_first_admin_once,
    every_page_carries_the_security_headers,
    attachments_download_with_the_apis_dispositions,
    the_list_searches_and_pages_by_keyset,
    a_password_change_ends_every_other_session,
    only_admins_manage_users_and_never_their_own_role,
);
