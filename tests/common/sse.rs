//! Reading a Server-Sent Events response block by block, within a deadline.

use std::time::Duration;

use serde_json::Value;

/// Nothing here should take more than milliseconds; this only bounds a hang.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// One event: its `id` (when it has one), `event` and JSON `data`.
#[derive(Debug)]
pub struct Sse {
    pub id: Option<i64>,
    pub kind: String,
    pub data: Value,
}

pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next block (lines up to a blank line), comments included.
    pub async fn next_block(&mut self) -> String {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return block;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("an event within the deadline")
                .expect("the stream reads")
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self) -> Sse {
        loop {
            let block = self.next_block().await;
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                    .map(str::to_owned)
            };
            if let (Some(kind), Some(data)) = (field("event"), field("data")) {
                return Sse {
                    id: field("id").map(|id| id.parse().unwrap()),
                    kind,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
        }
    }
}
