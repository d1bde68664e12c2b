//! Re-embeds migrations when they change, and turns on the PostgreSQL tests
//! (`cfg(pg_tests)`) when `MAILROOM_TEST_POSTGRES_URL` is set; without it they are
//! reported as ignored rather than silently passing.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=MAILROOM_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    if std::env::var_os("MAILROOM_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
