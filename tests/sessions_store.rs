//! The webmail's session store on both engines: sessions by digest, expiry, drops per
//! user and with the user, image-sender preferences, the signing key.

use crate::common;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use common::{Engine, TestDatabase};
use mailroom::store::{self, NewUser, Role, Session, SessionStore, UserStore};

async fn open(engine: Engine) -> (Arc<dyn UserStore>, Arc<dyn SessionStore>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let mail = store::open(&database.url).await.unwrap();
    mail.migrate().await.unwrap();
    mail.close().await;
    let users = store::open_users(&database.url).await.unwrap();
    let sessions = store::open_sessions(&database.url).await.unwrap();
    (users, sessions, database)
}

async fn add(users: &dyn UserStore, login: &str) -> i64 {
    let user = NewUser {
        login: login.into(),
        password_hash: "not-a-real-hash".into(),
        role: Role::User,
        addresses: vec![],
    };
    users.add_user(&user, Utc::now()).await.unwrap().unwrap()
}

fn session(digest: &str, user_id: i64, at: chrono::DateTime<Utc>) -> Session {
    Session {
        id_digest: digest.into(),
        user_id,
        login: String::new(),
        csrf_token: format!("csrf-{digest}"),
        created_at: at,
        last_seen_at: at,
    }
}

async fn sessions_are_found_by_digest_with_their_users_login(engine: Engine) {
    let (users, sessions, _db) = open(engine).await;
    let ana = add(users.as_ref(), "ana@x.org").await;
    let at = Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap();
    sessions
        .create_session(&session("d1", ana, at))
        .await
        .unwrap();
    let found = sessions.session("d1").await.unwrap().unwrap();
    assert_eq!(found.login, "ana@x.org");
    assert_eq!(found.csrf_token, "csrf-d1");
    assert_eq!((found.created_at, found.last_seen_at), (at, at));
    assert_eq!(sessions.session("other").await.unwrap(), None);
    let later = at + Duration::minutes(5);
    sessions.touch_session("d1", later).await.unwrap();
    assert_eq!(
        sessions.session("d1").await.unwrap().unwrap().last_seen_at,
        later
    );
    sessions.drop_session("d1").await.unwrap();
    assert_eq!(sessions.session("d1").await.unwrap(), None);
}

async fn sessions_end_per_user_with_the_user_and_when_expired(engine: Engine) {
    let (users, sessions, _db) = open(engine).await;
    let ana = add(users.as_ref(), "ana@x.org").await;
    let luis = add(users.as_ref(), "luis@x.org").await;
    let at = Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap();
    for (digest, user) in [("a1", ana), ("a2", ana), ("l1", luis)] {
        sessions
            .create_session(&session(digest, user, at))
            .await
            .unwrap();
    }
    assert_eq!(sessions.drop_user_sessions(ana).await.unwrap(), 2);
    assert!(sessions.session("a2").await.unwrap().is_none());
    assert!(sessions.session("l1").await.unwrap().is_some());
    users.remove_user("luis@x.org").await.unwrap();
    assert!(
        sessions.session("l1").await.unwrap().is_none(),
        "gone with the user"
    );

    let old = session("old", ana, at - Duration::days(8));
    let idle = Session {
        last_seen_at: at - Duration::hours(9),
        ..session("idle", ana, at - Duration::hours(10))
    };
    let fresh = session("fresh", ana, at);
    for s in [&old, &idle, &fresh] {
        sessions.create_session(s).await.unwrap();
    }
    let dropped = sessions
        .drop_expired_sessions(at - Duration::hours(8), at - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(dropped, 2);
    assert!(sessions.session("fresh").await.unwrap().is_some());
}

async fn image_senders_and_the_signing_key_are_kept(engine: Engine) {
    let (users, sessions, _db) = open(engine).await;
    let ana = add(users.as_ref(), "ana@x.org").await;
    assert!(
        !sessions
            .shows_images_from(ana, "news@shop.example")
            .await
            .unwrap()
    );
    sessions
        .show_images_from(ana, "news@shop.example")
        .await
        .unwrap();
    sessions
        .show_images_from(ana, "news@shop.example")
        .await
        .unwrap();
    assert!(
        sessions
            .shows_images_from(ana, "news@shop.example")
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .shows_images_from(ana, "other@shop.example")
            .await
            .unwrap()
    );
    let first = sessions.signing_key("aa").await.unwrap();
    assert_eq!(first, "aa");
    assert_eq!(
        sessions.signing_key("bb").await.unwrap(),
        "aa",
        "the first key stays"
    );
}

engine_tests!(
    sessions_are_found_by_digest_with_their_users_login,
    sessions_end_per_user_with_the_user_and_when_expired,
    image_senders_and_the_signing_key_are_kept,
);
