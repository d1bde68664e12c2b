//! Helpers for `bench/run.sh` (not part of the server or its tests).
//!
//! - `bench_tool payloads DIR`: writes realistic ImprovMX payloads (small, typical, large,
//!   huge); `@@MSGID@@` in each marks where the load script puts a unique Message-ID.
//! - `bench_tool seed DATABASE_URL COUNT`: migrates the database with mailroom's own
//!   migrations and inserts COUNT emails in big server-side statements, with the rows
//!   the server would have written for them (mailboxes, flags, search columns and
//!   words), then checks a sample against the server's own derivation.
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

/// Seeding: `COUNT` emails as the server would have stored them, each to one of
/// `MAILBOXES` mailboxes, with its mailbox row and flags, search columns and indexed
/// words. Set-based SQL builds the rows from small tables made here with the server's own
/// normaliser (`search::text::words`), so accents fold as the server folds them; a sample
/// is then checked against the server's own derivation (`check_row`).
async fn seed(url: &str, count: u64) -> anyhow::Result<()> {
    let store = mailroom::store::open(url).await?;
    store.migrate().await?;
    store.close().await;
    let started = Instant::now();
    let tables = SeedTables::new(url.starts_with("sqlite:"));
    let rare_every = (count / RARE_EMAILS).max(1);
    if url.starts_with("sqlite:") {
        seed_sqlite(url, count, rare_every, &tables).await?;
    } else {
        seed_postgres(url, count, rare_every, &tables).await?;
    }
    // Migrating again indexes the seeded subjects and words, as a restart would (SQLite
    // indexes them in bulk).
    let store = mailroom::store::open(url).await?;
    store.migrate().await?;
    store.close().await;
    let seconds = started.elapsed().as_secs_f64();
    let stats = if url.starts_with("sqlite:") {
        check_sqlite(url, count).await?
    } else {
        check_postgres(url, count).await?
    };
    println!("seeded {count} emails in {seconds:.1} s; {stats}");
    Ok(())
}

/// Also written as literals in `PICKS` (`% 50`) and `SEED_BODIES` (`% 1000`).
const MAILBOXES: usize = 50;
const SENDERS: usize = 1_000;
/// In one of the 16 paragraphs the first slot of a body draws from: in 1/16 of the mail.
const COMMON_WORD: &str = "presupuesto";
/// In the postscript of `RARE_EMAILS` emails, whatever the count.
const RARE_WORD: &str = "zanahoria";
const RARE_EMAILS: u64 = 5;
/// Subjects: 16 templates × a 7-digit number (`{n}`), so a word matches 1/16 of the mail
/// and a number one email or a few.
const SUBJECTS: [&str; 16] = [
    "Factura {n} de Proveedor",
    "Re: pedido {n} confirmado",
    "Your order {n} has shipped",
    "Recibo de pago {n}",
    "Invoice {n} (overdue)",
    "Newsletter semanal nº {n}",
    "Password reset code {n}",
    "Envío {n} en camino",
    "Meeting notes {n}",
    "Cotización {n} solicitada",
    "[alerta] servidor {n} caído",
    "Welcome aboard, customer {n}",
    "Resumen de cuenta {n}",
    "Ticket #{n} actualizado",
    "Promo 50% off {n}",
    "Consulta web {n}",
];
const FIRST_NAMES: [&str; 10] = [
    "Ana",
    "Luis",
    "María",
    "José",
    "Lucía",
    "Martín",
    "Sofía",
    "Diego",
    "Valentina",
    "Julián",
];
const LAST_NAMES: [&str; 10] = [
    "Pérez",
    "González",
    "Rodríguez",
    "Fernández",
    "López",
    "Martínez",
    "Gómez",
    "Díaz",
    "Sánchez",
    "Romero",
];
/// Body words, most frequent first (paragraphs draw them Zipf-like): Spanish and English
/// business mail, accents included.
const VOCABULARY: &str = "de la que el en y a los se del las un por con no una su para es al lo como \
    más o pero sus le ya este sí porque esta entre cuando muy sin sobre también me hasta hay donde \
    desde todo nos durante todos uno les ni contra otros ese eso ante ellos esto antes algunos unos \
    otro otras otra tanto esa estos mucho nada muchos cual poco ella estar estas algunas algo \
    pedido factura envío cliente pago entrega cuenta producto precio stock depósito transferencia \
    reunión semana mañana viernes lunes equipo informe propuesta contrato firma adjunto archivo \
    revisión cambios plazo fecha dirección teléfono consulta respuesta gracias atentamente the order \
    invoice shipping customer payment delivery account product price meeting report proposal \
    contract review attached please thanks team week monday friday update status tracking number \
    warehouse refund discount";
/// Paragraphs of a body: slots 1–3 always, slot 4 in half of the mail, 16 choices each.
const PARAGRAPHS: usize = 64;

/// The small tables the seeding SQL joins, as JSON arrays of arrays of strings.
struct SeedTables {
    /// [subject template, its words], `%07d` (SQLite) or `%s` (PostgreSQL) for the number.
    subjects: String,
    /// [name, address, words of the name, words of `name <address>`, its search key].
    senders: String,
    mailboxes: String,
    /// [text, words].
    paragraphs: String,
    /// Fixed lines of every body, and their words.
    greeting: (String, String),
    postscript: (String, String),
    signature: (String, String),
}

use mailroom::email::search_key;

fn folded_words(text: &str) -> String {
    mailroom::search::text::words(text).join(" ")
}

impl SeedTables {
    fn new(sqlite: bool) -> Self {
        let number = if sqlite { "%07d" } else { "%s" };
        let subjects: Vec<[String; 2]> = SUBJECTS
            .iter()
            .map(|template| {
                let words =
                    folded_words(&template.replace("{n}", "1234567")).replace("1234567", "{n}");
                [template.to_string(), words]
                    .map(|text| text.replace('%', "%%").replace("{n}", number))
            })
            .collect();
        let person = |name: String, address: String| {
            let people = format!("{name} <{address}>");
            let (name_words, people_words) = (folded_words(&name), folded_words(&people));
            [name, address, name_words, people_words, search_key(&people)]
        };
        let senders: Vec<[String; 5]> = (0..SENDERS)
            .map(|s| {
                let name = format!("{} {}", FIRST_NAMES[s % 10], LAST_NAMES[s / 10 % 10]);
                person(name, format!("sender{s}@example.org"))
            })
            .collect();
        let mailboxes: Vec<[String; 5]> = (0..MAILBOXES)
            .map(|m| person(format!("Buzón {m:02}"), format!("mbox{m:02}@puntoa.ar")))
            .collect();
        let paragraphs: Vec<[String; 2]> = (0..PARAGRAPHS)
            .map(|k| {
                let text = paragraph_text(k);
                let words = folded_words(&text);
                [text, words]
            })
            .collect();
        let line = |text: String| {
            let words = folded_words(&text);
            (text, words)
        };
        let json = |value: serde_json::Value| value.to_string();
        Self {
            subjects: json(json!(subjects)),
            senders: json(json!(senders)),
            mailboxes: json(json!(mailboxes)),
            paragraphs: json(json!(paragraphs)),
            greeting: line("Hola".into()),
            postscript: line(format!("PS: la {RARE_WORD} llegó bien.")),
            signature: line("Saludos,".into()),
        }
    }
}

/// Paragraph `k` of the pool: 12–45 words, Zipf-like over `VOCABULARY`, deterministic;
/// paragraph 0 carries `COMMON_WORD`.
fn paragraph_text(k: usize) -> String {
    let vocabulary: Vec<&str> = VOCABULARY.split_whitespace().collect();
    let mut state = (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let len = 12 + (next() % 34) as usize;
    let mut words: Vec<String> = Vec::with_capacity(len + 1);
    for n in 0..len {
        let u = (next() % 10_000) as f64 / 10_000.0;
        let mut word = vocabulary[(u * u * vocabulary.len() as f64) as usize].to_owned();
        if n + 1 < len && next() % 9 == 0 {
            word.push(',');
        }
        words.push(word);
    }
    if k == 0 {
        words.insert(1, COMMON_WORD.to_owned());
    }
    let mut text = words.join(" ");
    if let Some(first) = text.get(..1) {
        text.replace_range(..1, &first.to_uppercase());
    }
    text + "."
}

/// Each email's picks, from its number `i` (multiplicative hashes, one constant each):
/// mailbox, unread (1 in 5), starred (1 in 100), paragraphs of slots 1–3, slot 4 (none
/// when ≥ 16).
const PICKS: &str = "(((i * 2654435761) % 4294967296) >> 16) % 50 AS mailbox,
    (((i * 2246822519) % 4294967296) >> 16) % 5 = 0 AS unread,
    (((i * 3266489917) % 4294967296) >> 16) % 100 = 0 AS starred,
    (((i * 668265263) % 4294967296) >> 16) % 16 AS pa,
    16 + (((i * 374761393) % 4294967296) >> 16) % 16 AS pb,
    32 + (((i * 2869860233) % 4294967296) >> 16) % 16 AS pc,
    48 + (((i * 1103515245) % 4294967296) >> 16) % 32 AS pd";

/// The columns of a seeded email, from its picks joined to the tables (`{num}`: its
/// number as 7 digits; `{doc}`: its document as compact JSON, the server's form).
const SEED_COLUMNS: &str = "i, {id} AS id, 'seed-' || i AS dedup_key, {base} + i * 1000 AS received_at,
    NOT unread AS processed, starred, lower(s_address) AS from_email, lower(subject) AS subject_folded,
    s_folded AS sender_folded, m_folded AS recipients_folded, m_address AS mailbox, {doc} AS document,
    ' ' || subject_words || ' ' || s_people || ' ' || m_people || ' ' || text_words
        || ' ' || text_words || ' ' AS words";

/// Bodies: greeting, three or four paragraphs, a reference, the postscript of the rare
/// emails, a signature; the HTML is the same text in `<p>`s, so its words are the text's.
const SEED_BODIES: &str = "SELECT h.*, {subject} AS subject, {subject_words} AS subject_words,
    '{greeting} ' || m.name || ',' || {nl} || pa.text || {nl} || pb.text || {nl} || pc.text
        || coalesce({nl} || pd.text, '') || {nl} || 'Ref. ' || {num}
        || CASE WHEN rare THEN {nl} || '{postscript}' ELSE '' END || {nl} || '{signature} ' || s.name AS body_text,
    '<html><body><p>{greeting} ' || m.name || ',</p><p>' || pa.text || '</p><p>' || pb.text || '</p><p>' || pc.text
        || coalesce('</p><p>' || pd.text, '') || '</p><p>Ref. ' || {num}
        || CASE WHEN rare THEN '</p><p>{postscript}' ELSE '' END || '</p><p>{signature} ' || s.name
        || '</p></body></html>' AS body_html,
    '{greeting_words} ' || m.name_words || ' ' || pa.words || ' ' || pb.words || ' ' || pc.words
        || coalesce(' ' || pd.words, '') || ' ref ' || {num}
        || CASE WHEN rare THEN ' {postscript_words}' ELSE '' END || ' {signature_words} ' || s.name_words AS text_words,
    s.name AS s_name, s.address AS s_address, s.people_words AS s_people, s.folded AS s_folded,
    m.name AS m_name, m.address AS m_address, m.people_words AS m_people, m.folded AS m_folded
    FROM h JOIN t ON t.k = h.i % 16 JOIN s ON s.k = h.i % 1000 JOIN m ON m.k = h.mailbox
    JOIN p pa ON pa.k = h.pa JOIN p pb ON pb.k = h.pb JOIN p pc ON pc.k = h.pc LEFT JOIN p pd ON pd.k = h.pd";

/// `template` with the engine's pieces and the fixed lines filled in.
fn seed_sql(template: &str, tables: &SeedTables, pieces: &[(&str, &str)]) -> String {
    let mut sql = template.to_owned();
    for (name, value) in pieces {
        sql = sql.replace(&format!("{{{name}}}"), value);
    }
    for (name, (text, words)) in [
        ("greeting", &tables.greeting),
        ("postscript", &tables.postscript),
        ("signature", &tables.signature),
    ] {
        sql = sql
            .replace(&format!("{{{name}_words}}"), &words.replace('\'', "''"))
            .replace(&format!("{{{name}}}"), &text.replace('\'', "''"));
    }
    sql
}

const BASE_MICROS: i64 = 1_700_000_000_000_000;
/// Emails per round of statements: their temporary table stays in memory on SQLite
/// (`temp_store = MEMORY`, about 150 MB).
const SEED_CHUNK: u64 = 50_000;
const PG_SEED_CHUNK: u64 = 100_000;

async fn seed_sqlite(
    url: &str,
    count: u64,
    rare_every: u64,
    tables: &SeedTables,
) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await?;
    // Seed data, not mail: no need to wait for the disk after each statement here.
    sqlx::raw_sql("PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY")
        .execute(&mut conn)
        .await?;
    let person =
        "SELECT key AS k, value ->> 0 AS name, value ->> 1 AS address, value ->> 2 AS name_words,
        value ->> 3 AS people_words, value ->> 4 AS folded FROM json_each";
    let bodies = seed_sql(
        SEED_BODIES,
        tables,
        &[
            ("subject", "printf(t.subject, i)"),
            ("subject_words", "printf(t.words, i)"),
            ("nl", "char(10, 10)"),
            ("num", "printf('%07d', i)"),
        ],
    );
    let columns = seed_sql(SEED_COLUMNS, tables, &[
        ("id", "printf('%08x%016x', 1700000000 + i / 1000, i)"),
        ("base", &BASE_MICROS.to_string()),
        (
            "doc",
            "json_object('subject', subject, 'from', json_object('name', s_name, 'email', s_address),
                'to', json_array(json_object('name', m_name, 'email', m_address)),
                'message-id', '<' || i || '@seed>', 'text', body_text, 'html', body_html,
                'inlines', json_array(), 'attachments', json_array())",
        ),
    ]);
    let sql = format!(
        "CREATE TEMP TABLE seed AS
         WITH RECURSIVE n(i) AS (SELECT $5 UNION ALL SELECT i + 1 FROM n WHERE i < $6),
         t AS MATERIALIZED (SELECT key AS k, value ->> 0 AS subject, value ->> 1 AS words FROM json_each($1)),
         s AS MATERIALIZED ({person}($2)),
         m AS MATERIALIZED ({person}($3)),
         p AS MATERIALIZED (SELECT key AS k, value ->> 0 AS text, value ->> 1 AS words FROM json_each($4)),
         h AS (SELECT i, {PICKS}, (i - 1) % $7 = 0 AS rare FROM n),
         b AS ({bodies})
         SELECT {columns} FROM b"
    );
    let mut done = 0;
    while done < count {
        let end = (done + SEED_CHUNK).min(count);
        let mut tx = conn.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(&tables.subjects)
            .bind(&tables.senders)
            .bind(&tables.mailboxes)
            .bind(&tables.paragraphs)
            .bind((done + 1) as i64)
            .bind(end as i64)
            .bind(rare_every as i64)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(
            "INSERT INTO emails (id, dedup_key, received_at, processed, starred, from_email, subject_folded,
                 sender_folded, recipients_folded, attachment_count, size_bytes, document)
             SELECT id, dedup_key, received_at, processed, starred, from_email, subject_folded,
                 sender_folded, recipients_folded, 0, length(CAST(document AS BLOB)), document
             FROM seed ORDER BY i;
             INSERT INTO mailbox_emails (mailbox, email_id, received_at, is_read, starred)
             SELECT mailbox, id, received_at, processed, starred FROM seed ORDER BY i;
             INSERT INTO email_words (email_rowid, words)
             SELECT e.rowid, seed.words FROM seed JOIN emails e ON e.id = seed.id ORDER BY e.rowid;
             DROP TABLE seed;",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done = end;
    }
    // Every seeded email has its mailbox rows and search columns: nothing to file.
    // Only `emails` is analyzed: with STAT4 samples of FTS5's shadow tables, FTS5
    // re-prepares its internal statements on every query, which doubled search latency.
    sqlx::raw_sql(
        "UPDATE mail_state_backfill SET after_id = '', done = 1;
         PRAGMA wal_checkpoint(TRUNCATE);
         ANALYZE emails;",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

async fn seed_postgres(
    url: &str,
    count: u64,
    rare_every: u64,
    tables: &SeedTables,
) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    // The word index is built once at the end (as the server builds it, after its
    // migrations), not row by row.
    sqlx::raw_sql("DROP INDEX IF EXISTS emails_words")
        .execute(&mut conn)
        .await?;
    let person =
        "SELECT (ord - 1)::int AS k, v ->> 0 AS name, v ->> 1 AS address, v ->> 2 AS name_words,
        v ->> 3 AS people_words, v ->> 4 AS folded FROM json_array_elements";
    let bodies = seed_sql(
        SEED_BODIES,
        tables,
        &[
            ("subject", "format(t.subject, lpad(i::text, 7, '0'))"),
            ("subject_words", "format(t.words, lpad(i::text, 7, '0'))"),
            ("nl", "E'\\n\\n'"),
            ("num", "lpad(i::text, 7, '0')"),
        ],
    );
    // Compact JSON, as serde_json writes it (json_build_object adds spaces).
    let document = "'{\"subject\":' || to_json(subject)::text
        || ',\"from\":{\"name\":' || to_json(s_name)::text || ',\"email\":' || to_json(s_address)::text
        || '},\"to\":[{\"name\":' || to_json(m_name)::text || ',\"email\":' || to_json(m_address)::text
        || '}],\"message-id\":' || to_json('<' || i || '@seed>')::text
        || ',\"text\":' || to_json(body_text)::text || ',\"html\":' || to_json(body_html)::text
        || ',\"inlines\":[],\"attachments\":[]}'";
    let columns = seed_sql(
        SEED_COLUMNS,
        tables,
        &[
            (
                "id",
                "lpad(to_hex(1700000000 + i / 1000), 8, '0') || lpad(to_hex(i), 16, '0')",
            ),
            ("base", &BASE_MICROS.to_string()),
            ("doc", document),
        ],
    );
    let sql = format!(
        "CREATE TEMP TABLE seed AS
         WITH t AS MATERIALIZED (SELECT (ord - 1)::int AS k, v ->> 0 AS subject, v ->> 1 AS words
                    FROM json_array_elements($1::json) WITH ORDINALITY AS x(v, ord)),
         s AS MATERIALIZED ({person}($2::json) WITH ORDINALITY AS x(v, ord)),
         m AS MATERIALIZED ({person}($3::json) WITH ORDINALITY AS x(v, ord)),
         p AS MATERIALIZED (SELECT (ord - 1)::int AS k, v ->> 0 AS text, v ->> 1 AS words
               FROM json_array_elements($4::json) WITH ORDINALITY AS x(v, ord)),
         h AS (SELECT i, {PICKS}, (i - 1) % $7 = 0 AS rare FROM generate_series($5::bigint, $6::bigint) AS i),
         b AS ({bodies})
         SELECT {columns} FROM b"
    );
    let mut done = 0;
    while done < count {
        let end = (done + PG_SEED_CHUNK).min(count);
        let mut tx = conn.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(&tables.subjects)
            .bind(&tables.senders)
            .bind(&tables.mailboxes)
            .bind(&tables.paragraphs)
            .bind((done + 1) as i64)
            .bind(end as i64)
            .bind(rare_every as i64)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(
            "INSERT INTO emails (id, dedup_key, received_at, processed, starred, from_email, subject_folded,
                 sender_folded, recipients_folded, attachment_count, size_bytes, words, document)
             SELECT id, dedup_key, received_at, processed, starred, from_email, subject_folded,
                 sender_folded, recipients_folded, 0, octet_length(document), to_tsvector('simple', words), document
             FROM seed ORDER BY i;
             INSERT INTO mailbox_emails (mailbox, email_id, received_at, is_read, starred)
             SELECT mailbox, id, received_at, processed, starred FROM seed ORDER BY i;
             DROP TABLE seed;",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done = end;
    }
    // Vacuumed and analyzed as autovacuum would leave them after such an insert (one
    // statement each: VACUUM refuses to run in the transaction of a multi-statement query).
    for sql in [
        "UPDATE mail_state_backfill SET after_id = '', done = TRUE",
        "SET maintenance_work_mem = '1GB'",
        "CREATE INDEX emails_words ON emails USING gin (words)",
        "VACUUM ANALYZE emails",
        "VACUUM ANALYZE mailbox_emails",
    ] {
        sqlx::raw_sql(sql).execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

/// A seeded email as stored, to compare with what the server derives from its document.
#[derive(sqlx::FromRow)]
struct StoredRow {
    id: String,
    from_email: Option<String>,
    subject_folded: Option<String>,
    sender_folded: Option<String>,
    recipients_folded: Option<String>,
    attachment_count: i64,
    size_bytes: i64,
    processed: bool,
    starred: bool,
    document: String,
}

const STORED_ROW: &str = "SELECT id, from_email, subject_folded, sender_folded, recipients_folded,
    attachment_count, size_bytes, processed, starred, document FROM emails WHERE dedup_key = $1";
const MAILBOX_ROWS: &str =
    "SELECT mailbox, is_read, starred FROM mailbox_emails WHERE email_id = $1 ORDER BY mailbox";
/// Emails checked: the first (a rare one) and this many spread over the rest.
const CHECKED: u64 = 50;

/// The dedup keys of the checked emails.
fn checked_keys(count: u64) -> Vec<String> {
    let step = (count / CHECKED).max(1);
    (0..count.min(CHECKED))
        .map(|n| format!("seed-{}", 1 + n * step))
        .collect()
}

/// What the server would have stored for `row`'s document (its filing pass's
/// derivation), compared with what was seeded; answers the expected words.
fn check_row(row: &StoredRow, mailboxes: &[(String, bool, bool)]) -> anyhow::Result<String> {
    use mailroom::email::stored_size;
    let document: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.document)?;
    let message = mailroom::inbound::improvmx::message(&document);
    let search = mailroom::inbound::search_fields::search_columns(&message);
    let json_bytes = serde_json::to_string(&document)?.len();
    let text = |value: Option<&serde_json::Value>| value.and_then(|v| v.as_str()).map(search_key);
    let expected_mailboxes: Vec<(String, bool, bool)> = message
        .mailboxes()
        .into_iter()
        .map(|mailbox| (mailbox, row.processed, row.starred))
        .collect();
    let checks = [
        (
            "from_email",
            row.from_email == text(document.get("from").and_then(|f| f.get("email"))),
        ),
        (
            "subject_folded",
            row.subject_folded == text(document.get("subject")),
        ),
        ("sender_folded", row.sender_folded == search.sender),
        (
            "recipients_folded",
            row.recipients_folded == search.recipients,
        ),
        (
            "attachment_count",
            row.attachment_count == i64::from(search.attachments),
        ),
        (
            "size_bytes",
            row.size_bytes as u64 == stored_size(json_bytes, &message),
        ),
        ("mailbox_emails", mailboxes == expected_mailboxes),
    ];
    for (column, ok) in checks {
        if !ok {
            bail!("seeded email {} differs from the server's {column}", row.id);
        }
    }
    Ok(search.words)
}

async fn check_sqlite(url: &str, count: u64) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await?;
    for key in checked_keys(count) {
        let row: StoredRow = sqlx::query_as(STORED_ROW)
            .bind(&key)
            .fetch_one(&mut conn)
            .await?;
        let mailboxes: Vec<(String, bool, bool)> = sqlx::query_as(MAILBOX_ROWS)
            .bind(&row.id)
            .fetch_all(&mut conn)
            .await?;
        let words = check_row(&row, &mailboxes)?;
        let seeded: String = sqlx::query_scalar(
            "SELECT words FROM email_words WHERE email_rowid = (SELECT rowid FROM emails WHERE id = $1)",
        )
        .bind(&row.id)
        .fetch_one(&mut conn)
        .await?;
        if seeded != words {
            bail!(
                "seeded email {} differs from the server's words:\n{seeded}\n{words}",
                row.id
            );
        }
    }
    let matches = |word: &str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM emails_words WHERE emails_words MATCH $1",
        )
        .bind(word.to_owned())
    };
    let common = matches(COMMON_WORD).fetch_one(&mut conn).await?;
    let rare = matches(RARE_WORD).fetch_one(&mut conn).await?;
    let unread: i64 = sqlx::query_scalar("SELECT count(*) FROM mailbox_emails WHERE NOT is_read")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(seed_stats(count, common, rare, unread))
}

async fn check_postgres(url: &str, count: u64) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    for key in checked_keys(count) {
        let row: StoredRow = sqlx::query_as(STORED_ROW)
            .bind(&key)
            .fetch_one(&mut conn)
            .await?;
        let mailboxes: Vec<(String, bool, bool)> = sqlx::query_as(MAILBOX_ROWS)
            .bind(&row.id)
            .fetch_all(&mut conn)
            .await?;
        let words = check_row(&row, &mailboxes)?;
        // As the server writes it: to_tsvector('simple', …) of the words.
        let same: bool = sqlx::query_scalar(
            "SELECT words = to_tsvector('simple', $2) FROM emails WHERE id = $1",
        )
        .bind(&row.id)
        .bind(&words)
        .fetch_one(&mut conn)
        .await?;
        if !same {
            bail!("seeded email {} differs from the server's words", row.id);
        }
    }
    let matches = |word: &str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM emails WHERE words @@ to_tsquery('simple', $1)",
        )
        .bind(word.to_owned())
    };
    let common = matches(COMMON_WORD).fetch_one(&mut conn).await?;
    let rare = matches(RARE_WORD).fetch_one(&mut conn).await?;
    let unread: i64 = sqlx::query_scalar("SELECT count(*) FROM mailbox_emails WHERE NOT is_read")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(seed_stats(count, common, rare, unread))
}

fn seed_stats(count: u64, common: i64, rare: i64, unread: i64) -> String {
    let share = |n: i64| 100.0 * n as f64 / count.max(1) as f64;
    format!(
        "{MAILBOXES} mailboxes, {unread} unread ({:.1} %); common word '{COMMON_WORD}' in {common} emails ({:.1} %), \
         rare word '{RARE_WORD}' in {rare}; {} emails checked against the server's derivation",
        share(unread),
        share(common),
        count.min(CHECKED)
    )
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
