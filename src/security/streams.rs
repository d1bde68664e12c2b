//! Open event streams per client IP (`EVENTS_MAX_STREAMS`): a stream holds a slot for as
//! long as it is open, so a client cannot pile up connections that each follow the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The slots of every client, shared by the streams that hold them.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    max_per_client: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open stream's slot, given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl StreamSlots {
    pub fn new(max_per_client: usize) -> Self {
        Self {
            max_per_client,
            open: Arc::default(),
        }
    }

    /// A slot for `ip`, or `None` when it holds `max_per_client` already.
    pub fn take(&self, ip: IpAddr) -> Option<StreamSlot> {
        let mut open = self.open.lock().expect("stream slots lock");
        let count = open.entry(ip).or_default();
        if *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            ip,
            open: self.open.clone(),
        })
    }

    /// Streams open in all, for the metrics.
    pub fn open(&self) -> usize {
        self.open.lock().expect("stream slots lock").values().sum()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("stream slots lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Entries exist only while streams are open: the map stays small.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_slots_back_when_its_streams_close() {
        let slots = StreamSlots::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let first = slots.take(ip).unwrap();
        let _second = slots.take(ip).unwrap();
        assert!(slots.take(ip).is_none());
        assert!(slots.take(other).is_some(), "each client has its own slots");
        drop(first);
        let _third = slots.take(ip).expect("a slot given back");
        assert_eq!(slots.open(), 2);
    }
}
