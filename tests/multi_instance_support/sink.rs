//! An SMTP sink for several instances: one listener per instance, so the test knows
//! which instance is sending, and one shared record of what was accepted. It can hold a
//! message for a while, either before accepting it or after (with the reply to its final
//! dot still unsent), so that an instance can be killed at either point.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server};

/// Where the sink holds each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// After `DATA`, before its `354`: a sender killed then has delivered nothing.
    BeforeAccepting,
    /// After the message is recorded, before the `250` to its final dot: a sender killed
    /// then has delivered it without learning so.
    AfterAccepting,
}

#[derive(Default)]
struct State {
    hold: Option<(Hold, Duration)>,
    /// The first recipient of every accepted message, in order.
    accepted: Vec<String>,
    /// Per listener: the recipient of a message being held there.
    holding: HashMap<usize, String>,
}

#[derive(Clone)]
struct Recorder {
    listener: usize,
    state: Arc<Mutex<State>>,
    recipient: String,
}

impl Recorder {
    fn hold(&self, at: Hold) -> Response {
        let hold = self.state.lock().unwrap().hold;
        if let Some((when, length)) = hold
            && when == at
        {
            let mut state = self.state.lock().unwrap();
            state.holding.insert(self.listener, self.recipient.clone());
            drop(state);
            std::thread::sleep(length);
            self.state.lock().unwrap().holding.remove(&self.listener);
        }
        OK
    }
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, to: &[String]) -> Response {
        self.recipient = to.first().cloned().unwrap_or_default();
        self.hold(Hold::BeforeAccepting)
    }

    fn data_end(&mut self) -> Response {
        let recipient = self.recipient.clone();
        self.state.lock().unwrap().accepted.push(recipient);
        self.hold(Hold::AfterAccepting)
    }
}

/// The sink; its listeners live until the test process ends.
#[derive(Clone)]
pub struct Sink {
    pub ports: Vec<u16>,
    state: Arc<Mutex<State>>,
}

impl Sink {
    /// A sink with one listener per instance.
    pub fn start(listeners: usize) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let ports = (0..listeners)
            .map(|listener| {
                let socket = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = socket.local_addr().unwrap().port();
                let recorder = Recorder {
                    listener,
                    state: state.clone(),
                    recipient: String::new(),
                };
                let mut server = Server::new(recorder);
                server.with_name("localhost").with_tcp_listener(socket);
                std::thread::spawn(move || {
                    let _ = server.serve();
                });
                port
            })
            .collect();
        Self { ports, state }
    }

    pub fn hold(&self, hold: Option<(Hold, Duration)>) {
        self.state.lock().unwrap().hold = hold;
    }

    /// The first recipient of every message accepted so far.
    pub fn accepted(&self) -> Vec<String> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Waits until `listener` (any, when `None`) holds a message; answers which
    /// listener and the message's recipient.
    pub async fn holding(&self, listener: Option<usize>) -> (usize, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = {
                let state = self.state.lock().unwrap();
                let mut held = state.holding.iter();
                held.find(|(l, _)| listener.is_none_or(|wanted| **l == wanted))
                    .map(|(l, recipient)| (*l, recipient.clone()))
            };
            if let Some(found) = found {
                return found;
            }
            assert!(Instant::now() < deadline, "no message held at {listener:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `count` messages were accepted.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = self.accepted();
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} messages arrived",
                accepted.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
