//! Helpers for `bench/run.sh` (not part of the server or its tests).
//!
//! - `bench_tool payloads DIR`: writes realistic ImprovMX payloads (small, typical, large,
//!   huge); `@@MSGID@@` in each marks where the load script puts a unique Message-ID.
//! - `bench_tool seed DATABASE_URL COUNT`: migrates the database with mailroom's own
//!   migrations and inserts COUNT emails in big server-side statements, with the same
//!   columns (and so the same search index) the server writes.
//! - `bench_tool pg-schema URL SCHEMA`: drops and recreates SCHEMA and prints a URL whose
//!   connections use it (`search_path=SCHEMA,public`), as the integration tests do.

use std::time::Instant;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["payloads", dir] => write_payloads(dir),
        ["seed", url, count] => seed(url, count.parse().context("COUNT")?).await,
        ["pg-schema", url, schema] => fresh_pg_schema(url, schema).await,
        _ => {
            bail!("usage: bench_tool payloads DIR | seed DATABASE_URL COUNT | pg-schema URL SCHEMA")
        }
    }
}

/// Deterministic bytes that do not compress to nothing (like a JPEG or a PDF).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn paragraph(words: usize) -> String {
    const WORDS: [&str; 12] = [
        "pedido",
        "factura",
        "envío",
        "cliente",
        "the",
        "order",
        "shipped",
        "confirmación",
        "payment",
        "received",
        "gracias",
        "invoice",
    ];
    (0..words)
        .map(|i| WORDS[(i * 7 + i / 3) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn payload(text_words: usize, html_words: usize, inline: usize, attachment: usize) -> String {
    let b64 = |len, seed| base64::engine::general_purpose::STANDARD.encode(noise(len, seed));
    let inlines: Vec<_> = (inline > 0)
        .then(|| json!({"type": "image/png", "name": "logo.png", "cid": "logo@puntoa", "content": b64(inline, 1)}))
        .into_iter()
        .collect();
    let attachments: Vec<_> = (attachment > 0)
        .then(|| json!({"type": "application/pdf", "name": "factura.pdf", "content": b64(attachment, 2)}))
        .into_iter()
        .collect();
    json!({
        "headers": {
            "X-Forwarding-Service": "ImprovMX v3.0.0",
            "Received": ["from mail.example.com (mail.example.com [203.0.113.9]) by mx1.improvmx.com", "from [10.0.0.7] by mail.example.com"],
            "Return-Path": "<bounce@example.com>",
            "DKIM-Signature": format!("v=1; a=rsa-sha256; d=example.com; s=s1; b={}", "A".repeat(340)),
            "Content-Type": "multipart/related; boundary=\"b1\"",
        },
        "to": [{"name": "Ventas", "email": "ventas@puntoa.ar"}],
        "from": {"name": "Proveedor Ejemplo", "email": "facturas@example.com"},
        "subject": "Factura 0012345 de Proveedor Ejemplo: pedido confirmado",
        "message-id": "<@@MSGID@@@bench.example.com>",
        "date": "Thu, 14 Nov 2024 12:12:45 +0000",
        "return-path": {"name": "", "email": "bounce@example.com"},
        "timestamp": 1_731_586_365,
        "text": paragraph(text_words),
        "html": format!("<html><body><p>{}</p><img src=\"cid:logo@puntoa\"></body></html>", paragraph(html_words)),
        "inlines": inlines,
        "attachments": attachments,
    })
    .to_string()
}

fn write_payloads(dir: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let sizes = [
        ("small", payload(110, 150, 0, 0)),
        ("typical", payload(800, 2_400, 60 * 1024, 0)),
        ("large", payload(800, 2_400, 0, 5 * 1024 * 1024)),
        ("huge", payload(800, 2_400, 0, 25 * 1024 * 1024)),
    ];
    for (name, body) in sizes {
        let path = format!("{dir}/{name}.json");
        std::fs::write(&path, &body).with_context(|| path.clone())?;
        println!("{name}: {} bytes", body.len());
    }
    Ok(())
}

async fn seed(url: &str, count: u64) -> anyhow::Result<()> {
    let store = mailroom::store::open(url).await?;
    store.migrate().await?;
    store.close().await;
    let started = Instant::now();
    if url.starts_with("sqlite:") {
        seed_sqlite(url, count).await?;
    } else {
        seed_postgres(url, count).await?;
    }
    // Migrating again indexes the seeded subjects, as a restart would (SQLite indexes
    // them in bulk).
    let store = mailroom::store::open(url).await?;
    store.migrate().await?;
    store.close().await;
    println!(
        "seeded {count} emails in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Subjects: 16 templates × a 7-digit number, so a word matches 1/16 of the mail and a
/// number matches one email or a few.
const TEMPLATES: &str = "'Factura %07d de Proveedor','Re: pedido %07d confirmado','Your order %07d has shipped','Recibo de pago %07d','Invoice %07d (overdue)','Newsletter semanal nº %07d','Password reset code %07d','Envío %07d en camino','Meeting notes %07d','Cotización %07d solicitada','[alerta] servidor %07d caído','Welcome aboard, customer %07d','Resumen de cuenta %07d','Ticket #%07d actualizado','Promo 50%% off %07d','Consulta web %07d'";

async fn seed_sqlite(url: &str, count: u64) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await?;
    // Seed data, not mail: no need to wait for the disk after each statement here.
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&mut conn)
        .await?;
    let base_micros: i64 = 1_700_000_000_000_000;
    let step = 100_000u64;
    let mut done = 0;
    while done < count {
        let end = (done + step).min(count);
        let sql = format!(
            "WITH RECURSIVE n(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM n WHERE i < {last}),
             t(k, template) AS (SELECT key, value FROM json_each(json_array({TEMPLATES}))),
             s(i, subject) AS (SELECT i, printf(template, i) FROM n JOIN t ON t.k = i % 16)
             INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded, document)
             SELECT printf('%08x%016x', 1700000000 + i / 1000, i), 'seed-' || i, {base_micros} + i * 1000, 0,
                    'sender' || (i % 1000) || '@example.org', lower(subject),
                    json_object('subject', subject, 'from', json_object('email', 'sender' || (i % 1000) || '@example.org'),
                                'to', json_array(json_object('email', 'ventas@puntoa.ar')),
                                'message-id', '<' || i || '@seed>', 'text', 'hello', 'html', '<p>hello</p>',
                                'inlines', json_array(), 'attachments', json_array())
             FROM s",
            start = done + 1,
            last = end,
        );
        let mut tx = conn.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        done = end;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    // Only `emails`: with STAT4 samples of FTS5's shadow tables, FTS5 re-prepares its
    // internal statements on every query, which doubled search latency here.
    sqlx::query("ANALYZE emails").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn seed_postgres(url: &str, count: u64) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let templates = TEMPLATES.replace("%07d", "%s");
    let sql = format!(
        "INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded, document)
         SELECT lpad(to_hex(1700000000 + i / 1000), 8, '0') || lpad(to_hex(i), 16, '0'), 'seed-' || i,
                1700000000000000 + i * 1000, false, 'sender' || (i % 1000) || '@example.org', lower(subject),
                json_build_object('subject', subject, 'from', json_build_object('email', 'sender' || (i % 1000) || '@example.org'),
                                  'to', json_build_array(json_build_object('email', 'ventas@puntoa.ar')),
                                  'message-id', '<' || i || '@seed>', 'text', 'hello', 'html', '<p>hello</p>',
                                  'inlines', json_build_array(), 'attachments', json_build_array())::text
         FROM (SELECT i, format((ARRAY[{templates}])[i % 16 + 1], lpad(i::text, 7, '0')) AS subject
               FROM generate_series(1, {count}) AS i) AS s"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    sqlx::query("ANALYZE emails").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn fresh_pg_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    if !schema.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        bail!("SCHEMA must be lower-case letters and underscores");
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    let separator = if url.contains('?') { '&' } else { '?' };
    println!("{url}{separator}options=-c%20search_path%3D{schema}%2Cpublic");
    Ok(())
}
