//! Re-embeds migrations when they change, and turns on the PostgreSQL tests
//! (`cfg(pg_tests)`) when `MAILROOM_TEST_POSTGRES_URL` is set; without it they are
//! reported as ignored rather than silently passing. Likewise the end-to-end test through
//! a real Caddy (`cfg(caddy_tests)`) runs when a `caddy` binary is on the `PATH`.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=MAILROOM_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    if std::env::var_os("MAILROOM_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(caddy_tests)");
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join("caddy").is_file()) {
        println!("cargo::rustc-cfg=caddy_tests");
    }
}
