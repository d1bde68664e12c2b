//! Webmail accounts: the user store on both engines, and `mailroom user …`.

use crate::common;

use std::io::Write as _;
use std::process::{Output, Stdio};

use chrono::{TimeZone, Utc};
use common::process::mailroom;
use common::{Engine, TestDatabase};
use mailroom::security::passwords::{Password, verify};
use mailroom::store::{self, NewUser, Role, UserStore};

async fn open(engine: Engine) -> (std::sync::Arc<dyn UserStore>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let mail = store::open(&database.url).await.unwrap();
    mail.migrate().await.unwrap();
    mail.close().await;
    (store::open_users(&database.url).await.unwrap(), database)
}

fn ana() -> NewUser {
    NewUser {
        login: "ana@puntoa.ar".into(),
        password_hash: Password::new("correct horse battery").unwrap().hash(),
        role: Role::User,
        addresses: vec!["ana@puntoa.ar".into(), "info@puntoa.ar".into()],
    }
}

async fn users_are_created_once_and_read_back(engine: Engine) {
    let (users, _db) = open(engine).await;
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    assert_eq!(users.count_users().await.unwrap(), 0);
    let id = users.add_user(&ana(), at).await.unwrap().expect("created");
    assert_eq!(
        users.add_user(&ana(), at).await.unwrap(),
        None,
        "a login is unique"
    );
    let stored = users.user("ana@puntoa.ar").await.unwrap().unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.role, Role::User);
    assert_eq!(stored.addresses, ["ana@puntoa.ar", "info@puntoa.ar"]);
    assert_eq!(stored.created_at, at);
    assert!(verify("correct horse battery", &stored.password_hash));
    assert_eq!(users.user("nobody").await.unwrap(), None);
    assert_eq!(users.count_users().await.unwrap(), 1);
    users.close().await;
}

async fn passwords_roles_and_addresses_change(engine: Engine) {
    let (users, _db) = open(engine).await;
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    users.add_user(&ana(), at).await.unwrap();
    let later = at + chrono::Duration::hours(1);
    let hash = Password::new("another good one").unwrap().hash();
    assert!(
        users
            .set_password("ana@puntoa.ar", &hash, later)
            .await
            .unwrap()
    );
    assert!(users.set_role("ana@puntoa.ar", Role::Admin).await.unwrap());
    let catch_all = vec!["*@puntoa.ar".to_owned()];
    assert!(
        users
            .set_addresses("ana@puntoa.ar", &catch_all)
            .await
            .unwrap()
    );
    let stored = users.user("ana@puntoa.ar").await.unwrap().unwrap();
    assert!(verify("another good one", &stored.password_hash));
    assert_eq!(stored.password_changed_at, later);
    assert_eq!(stored.role, Role::Admin);
    assert_eq!(stored.addresses, catch_all);
    for missing in [
        users.set_password("x", &hash, later).await.unwrap(),
        users.set_role("x", Role::User).await.unwrap(),
        users.set_addresses("x", &[]).await.unwrap(),
        users.remove_user("x").await.unwrap(),
    ] {
        assert!(!missing, "unknown users are reported, not created");
    }
    assert!(users.remove_user("ana@puntoa.ar").await.unwrap());
    assert!(users.users().await.unwrap().is_empty());
    users.close().await;
}

engine_tests!(
    users_are_created_once_and_read_back,
    passwords_roles_and_addresses_change,
);

/// Runs `mailroom user ARGS` in `dir`, feeding `stdin`.
fn user_command(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = mailroom(dir)
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_user_command_adds_lists_changes_and_removes_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let add = [
        "add",
        "Ana@PuntoA.ar",
        "--admin",
        "--address",
        "*@puntoa.ar",
        "--password-stdin",
    ];
    let added = user_command(dir.path(), &add, "correct horse battery\n");
    assert!(added.status.success(), "{}", text(&added));
    assert!(text(&added).contains("added ana@puntoa.ar (admin)"));

    let again = user_command(dir.path(), &add, "correct horse battery\n");
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));

    let short = user_command(dir.path(), &["add", "luis", "--password-stdin"], "short\n");
    assert!(!short.status.success());
    assert!(
        text(&short).contains("at least 10 characters"),
        "{}",
        text(&short)
    );

    let generated = user_command(dir.path(), &["add", "luis"], "");
    assert!(generated.status.success(), "{}", text(&generated));
    let password = text(&generated)
        .lines()
        .find_map(|l| l.strip_prefix("password: ").map(str::to_owned))
        .expect("a generated password is printed once");
    assert_eq!(password.len(), 20);

    let list = user_command(dir.path(), &["list"], "");
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains("ana@puntoa.ar\tadmin\t*@puntoa.ar,ana@puntoa.ar"),
        "{listed}"
    );
    assert!(listed.contains("luis\tuser\t"), "{listed}");
    assert!(!listed.contains("argon2"), "hashes are never printed");

    let passwd = user_command(
        dir.path(),
        &["passwd", "luis", "--password-stdin"],
        "a new password 1\n",
    );
    assert!(passwd.status.success(), "{}", text(&passwd));
    let removed = user_command(dir.path(), &["remove", "luis"], "");
    assert!(removed.status.success(), "{}", text(&removed));
    let gone = user_command(dir.path(), &["remove", "luis"], "");
    assert!(!gone.status.success());
    assert!(text(&gone).contains("no user luis"));
}
