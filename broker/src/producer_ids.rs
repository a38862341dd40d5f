//! Producer-id allocation for idempotent producers. Ids are handed out from blocks whose upper
//! bound is persisted before any id of the block is used, so no id is ever issued twice, even
//! across crashes.

use crate::error::BrokerError;
use crate::fsutil::{io_err, write_atomically};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

const BLOCK_SIZE: i64 = 1000;

#[derive(Serialize, Deserialize)]
struct Stored {
    next_block_start: i64,
}

struct State {
    next: i64,
    block_end: i64,
}

/// Hands out producer ids.
pub struct ProducerIds {
    path: PathBuf,
    state: Mutex<State>,
}

impl ProducerIds {
    /// Loads the allocator state from `<data-dir>/meta/producer-ids.json`.
    pub fn open(path: PathBuf) -> Result<ProducerIds, BrokerError> {
        let start = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<Stored>(&bytes)
                    .map_err(|e| BrokerError::Metadata(format!("{} is corrupt: {e}", path.display())))?
                    .next_block_start
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(format!("reading {}", path.display()), e)),
        };
        Ok(ProducerIds { path, state: Mutex::new(State { next: start, block_end: start }) })
    }

    /// A fresh producer id.
    pub fn allocate(&self) -> Result<i64, BrokerError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.next >= state.block_end {
            let block_end = state.next + BLOCK_SIZE;
            let bytes = serde_json::to_vec(&Stored { next_block_start: block_end })
                .map_err(|e| BrokerError::Internal(e.to_string()))?;
            write_atomically(&self.path, &bytes)?;
            state.block_end = block_end;
        }
        let id = state.next;
        state.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer-ids.json");
        let first = ProducerIds::open(path.clone()).unwrap();
        let a = first.allocate().unwrap();
        let b = first.allocate().unwrap();
        assert_ne!(a, b);
        drop(first);
        let second = ProducerIds::open(path).unwrap();
        let c = second.allocate().unwrap();
        assert!(c > b, "id {c} reused after restart (had {a}, {b})");
    }
}
