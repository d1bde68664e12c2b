//! The webmail's sessions over real HTTP on both engines: login, rotation, logout, CSRF,
//! lockout, redirects, cookie flags, the setup link and password changes.

use crate::common;
use crate::webmail_support;

use common::{Engine, TestApp, UNLIMITED};
use mailroom::email::EmailId;
use mailroom::store::Role;
use webmail_support::{Client, PASSWORD, add_user, csrf_in, email_to, location};

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
    // A form without its fields gets the friendly page, and changes nothing either.
    let response = client.post(&path, &[("csrf", &token)]).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The form was incomplete")
    );
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

engine_tests!(
    a_login_rotates_the_session_and_logout_ends_it,
    a_post_without_the_right_csrf_token_changes_nothing,
    failed_logins_lock_the_client_out_apart_from_api_keys,
    the_target_after_login_is_a_local_path_only,
    cookies_are_secure_behind_an_https_proxy_only,
    the_setup_link_creates_the_first_admin_once,
    a_password_change_ends_every_other_session,
);
