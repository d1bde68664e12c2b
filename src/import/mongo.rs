//! `mailroom import-mongo`: the old service's `mongoexport` output → the store.
//!
//! Each exported document goes through the same ImprovMX decoding as a webhook delivery,
//! keeping its `_id`, `received_at` and `processed`. Its redelivery key is derived from
//! the `_id`, so a re-run finds every email already there, and every old id stays
//! reachable even when the old service stored the same email twice.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::extended_json;
use crate::email::{EmailId, NewEmail};
use crate::inbound::improvmx;
use crate::store::{Inserted, Store};

/// Documents stored concurrently: enough for SQLite's group commit to batch them.
const IN_FLIGHT: usize = 8;

/// Where a document sits in the export, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a one-document-per-line export.
    Line(u64),
    /// 0-based index in a `--jsonArray` export.
    Index(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(line) => write!(f, "line {line}"),
            Position::Index(index) => write!(f, "array index {index}"),
        }
    }
}

/// Why a document was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDocument {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("`_id` is missing or not an ObjectId (24 hexadecimal characters)")]
    Id,
    #[error("`received_at` is not a date")]
    ReceivedAt,
    #[error("`processed` is not true or false")]
    Processed,
    #[error("{0}")]
    Payload(String),
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    pub imported: u64,
    pub already_present: u64,
    pub skipped: Vec<(Position, BadDocument)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} imported, {} already present, {} skipped",
            self.imported,
            self.already_present,
            self.skipped.len()
        )
    }
}

/// One exported document → the email to store, with its old id, date and flag.
pub fn convert(document: Value) -> Result<NewEmail, BadDocument> {
    let Value::Object(mut fields) = document else {
        return Err(BadDocument::NotAnObject);
    };
    let id = fields
        .remove("_id")
        .as_ref()
        .and_then(extended_json::object_id)
        .ok_or(BadDocument::Id)?;
    let received_at = match fields.remove("received_at") {
        None | Some(Value::Null) => id_timestamp(id),
        Some(value) => extended_json::date(&value).ok_or(BadDocument::ReceivedAt)?,
    };
    let processed = match fields.remove("processed") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => return Err(BadDocument::Processed),
    };
    let payload = serde_json::to_vec(&extended_json::simplify(Value::Object(fields)))
        .map_err(|e| BadDocument::Payload(e.to_string()))?;
    let mut email =
        improvmx::parse(&payload, received_at).map_err(|e| BadDocument::Payload(e.to_string()))?;
    email.id = id;
    email.processed = processed;
    email.dedup_key = import_key(id);
    Ok(email)
}

/// The redelivery key of an imported email: its old id, in a namespace of its own.
fn import_key(id: EmailId) -> String {
    let mut key = Sha256::new();
    key.update(b"mailroom-import-mongo-v1\0");
    key.update(id.to_string().as_bytes());
    hex::encode(key.finalize())
}

/// An ObjectId's creation second: the fallback when `received_at` is absent.
fn id_timestamp(id: EmailId) -> DateTime<Utc> {
    let seconds = u32::from_str_radix(&id.to_string()[..8], 16).unwrap_or_default();
    DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or_default()
}

/// Imports the export at `path` into `store`, showing a progress bar on a terminal.
///
/// Bad documents are reported on stderr and skipped. A storage failure stops the import;
/// running it again is safe, since emails already stored are recognised by their id.
pub async fn import_file(store: Arc<dyn Store>, path: &Path) -> anyhow::Result<Report> {
    import_file_in(store, path, &[]).await
}

/// `import_file`, filing each email in the mailboxes of its recipients in `domains`
/// (`DOMINIO`; every recipient when empty), as the webhook does.
pub async fn import_file_in(
    store: Arc<dyn Store>,
    path: &Path,
    domains: &[String],
) -> anyhow::Result<Report> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or_default();
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{bar:30} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg}",
        )
        .expect("a valid progress template"),
    );
    let result = import_reader(store, file, domains, &progress).await;
    progress.finish_and_clear();
    result
}

async fn import_reader(
    store: Arc<dyn Store>,
    file: File,
    domains: &[String],
    progress: &ProgressBar,
) -> anyhow::Result<Report> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (sender, receiver) = mpsc::channel(IN_FLIGHT * 2);
    let reader = tokio::task::spawn_blocking({
        let counter = bytes_read.clone();
        move || {
            read_documents(
                Counting {
                    inner: file,
                    counter,
                },
                &sender,
            )
        }
    });

    let documents = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let outcomes = documents
        .map(
            |(position, document): (Position, Result<NewEmail, BadDocument>)| {
                let store = store.clone();
                async move {
                    match document {
                        Ok(mut email) => {
                            email.keep_mailboxes_in(domains);
                            (position, Ok(store.insert_inbound(email).await))
                        }
                        Err(bad) => (position, Err(bad)),
                    }
                }
            },
        )
        .buffer_unordered(IN_FLIGHT);
    let mut outcomes = std::pin::pin!(outcomes);

    let mut report = Report::default();
    while let Some((position, outcome)) = outcomes.next().await {
        match outcome {
            Ok(Ok(Inserted::New(_))) => report.imported += 1,
            Ok(Ok(Inserted::Duplicate(_))) => report.already_present += 1,
            Ok(Err(error)) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "failed to store the document at {position}; \
                     run the import again to continue (stored emails are not imported twice)"
                )));
            }
            Err(bad) => {
                progress.suspend(|| eprintln!("skipped {position}: {bad}"));
                report.skipped.push((position, bad));
            }
        }
        progress.set_position(bytes_read.load(Ordering::Relaxed));
        progress.set_message(report.to_string());
    }
    reader
        .await
        .context("the export reader stopped")?
        .context("failed to read the export")?;
    Ok(report)
}

type Sender = mpsc::Sender<(Position, Result<NewEmail, BadDocument>)>;

/// Reads one document per line, or a JSON array (`--jsonArray`), and sends each converted.
fn read_documents(file: impl Read, sender: &Sender) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let first = loop {
        let buffer = reader.fill_buf()?;
        let skip = buffer
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if skip < buffer.len() || buffer.is_empty() {
            let first = buffer.get(skip).copied();
            reader.consume(skip);
            break first;
        }
        reader.consume(skip);
    };
    match first {
        Some(b'[') => read_array(reader, sender),
        _ => read_lines(reader, sender),
    }
}

fn read_lines(mut reader: impl BufRead, sender: &Sender) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let document = serde_json::from_slice::<Value>(text)
            .map_err(|e| BadDocument::NotJson(within_line(&e)))
            .and_then(convert);
        if sender
            .blocking_send((Position::Line(number), document))
            .is_err()
        {
            return Ok(()); // the importer stopped; it reports why
        }
    }
}

/// serde's message with the column only: its "line 1" would read as the file's first line.
fn within_line(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    format!("{message} (column {})", error.column())
}

/// Streams the array's elements; a syntax error ends the array, reported at its index.
fn read_array(reader: impl BufRead, sender: &Sender) -> std::io::Result<()> {
    use serde::Deserializer as _;
    let mut next_index = 0;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let elements = Elements {
        sender,
        next_index: &mut next_index,
    };
    let result = deserializer
        .deserialize_seq(elements)
        .and_then(|()| deserializer.end());
    if let Err(error) = result {
        if error.is_io() {
            return Err(error.into());
        }
        let bad = BadDocument::NotJson(format!("{error}; nothing after it could be read"));
        let _ = sender.blocking_send((Position::Index(next_index), Err(bad)));
    }
    Ok(())
}

struct Elements<'a> {
    sender: &'a Sender,
    next_index: &'a mut u64,
}

impl<'de> serde::de::Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of exported emails")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(document) = seq.next_element::<Value>()? {
            let position = Position::Index(*self.next_index);
            *self.next_index += 1;
            if self
                .sender
                .blocking_send((position, convert(document)))
                .is_err()
            {
                return Err(serde::de::Error::custom("the import stopped"));
            }
        }
        Ok(())
    }
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.counter.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exported(extra: Value) -> Value {
        let mut document = json!({
            "_id": {"$oid": "6735f1a08c1e4b2a9f0a1b2c"},
            "subject": "Factura",
            "from": {"name": "Ana", "email": "Ana@Example.org"},
            "timestamp": {"$numberInt": "1731586364"},
            "attachments": [{"type": "text/plain", "name": "a.txt", "content": "aGk="}],
            "received_at": {"$date": {"$numberLong": "1731586365123"}},
            "processed": true,
        });
        document
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        document
    }

    #[test]
    fn ids_dates_and_flags_are_kept() {
        let email = convert(exported(json!({}))).unwrap();
        assert_eq!(email.id.to_string(), "6735f1a08c1e4b2a9f0a1b2c");
        assert_eq!(email.received_at.timestamp_millis(), 1_731_586_365_123);
        assert!(email.processed);
        assert_eq!(email.from_email().as_deref(), Some("ana@example.org"));
        let document = &email.document;
        assert_eq!(document["timestamp"], 1731586364);
        for reserved in ["_id", "received_at", "processed", "payload__id"] {
            assert!(!document.contains_key(reserved), "{reserved}");
        }
    }

    #[test]
    fn parts_are_decoded_like_webhook_mail() {
        let email = convert(exported(json!({}))).unwrap();
        assert_eq!(email.blobs.len(), 1);
        assert_eq!(email.blobs[0].1, b"hi");
        assert!(&email.document["attachments"][0].get("content").is_none());
    }

    #[test]
    fn the_key_depends_on_the_id_only() {
        let a = convert(exported(json!({"subject": "one"}))).unwrap();
        let b = convert(exported(json!({"subject": "two"}))).unwrap();
        let c = convert(exported(
            json!({"_id": {"$oid": "6735f1a08c1e4b2a9f0a1b2d"}}),
        ))
        .unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
    }

    #[test]
    fn a_missing_date_comes_from_the_id() {
        let email = convert(exported(json!({"received_at": null, "processed": null}))).unwrap();
        assert_eq!(email.received_at.timestamp(), 0x6735_f1a0);
        assert!(!email.processed);
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        assert_eq!(convert(json!([1])).unwrap_err(), BadDocument::NotAnObject);
        for (extra, expected) in [
            (json!({"_id": "short"}), BadDocument::Id),
            (json!({"_id": 7}), BadDocument::Id),
            (json!({"received_at": "last week"}), BadDocument::ReceivedAt),
            (json!({"processed": "yes"}), BadDocument::Processed),
        ] {
            assert_eq!(convert(exported(extra)).unwrap_err(), expected);
        }
        let mut no_id = exported(json!({}));
        no_id.as_object_mut().unwrap().remove("_id");
        assert_eq!(convert(no_id).unwrap_err(), BadDocument::Id);
    }

    fn read(text: &str) -> Vec<(Position, Result<String, BadDocument>)> {
        let (sender, mut receiver) = mpsc::channel(64);
        read_documents(text.as_bytes(), &sender).unwrap();
        drop(sender);
        let mut out = Vec::new();
        while let Ok((position, document)) = receiver.try_recv() {
            out.push((position, document.map(|email| email.id.to_string())));
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_blank_lines_skipped() {
        let good = exported(json!({})).to_string();
        let text = format!("{good}\n\n{{not json\n{good}\n");
        let out = read(&text);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].0, Position::Line(1));
        assert!(out[0].1.is_ok());
        assert_eq!(out[1].0, Position::Line(3));
        assert!(matches!(out[1].1, Err(BadDocument::NotJson(_))));
        assert_eq!(out[2].0, Position::Line(4));
    }

    #[test]
    fn arrays_are_indexed_and_a_syntax_error_ends_them() {
        let good = exported(json!({})).to_string();
        let out = read(&format!("  [ {good}, 42, {good} ]\n"));
        let positions: Vec<_> = out.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            positions,
            [Position::Index(0), Position::Index(1), Position::Index(2)]
        );
        assert_eq!(out[1].1, Err(BadDocument::NotAnObject));

        let out = read(&format!("[{good}, {{oops}}, {good}]"));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].0, Position::Index(1));
        assert!(matches!(out[1].1, Err(BadDocument::NotJson(_))));
    }
}
