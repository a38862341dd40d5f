//! The queue between the inputs and the output: batches of encoded envelopes, bounded by their
//! bytes rather than their count, so a burst of large events cannot hold much memory and a file
//! input hands over a whole read (hundreds of lines) with one wake-up instead of one per line.
//!
//! Senders wait for room (that wait is the inputs' backpressure); async inputs `send`, threads
//! `blocking_send_batch`. The receiver gives room back as it takes a batch.

use crate::pipeline::Envelope;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// The output is gone (the agent is stopping); the batch was not queued.
#[derive(Debug, thiserror::Error)]
#[error("the agent's output is closed")]
pub struct Closed;

struct Shared {
    /// Free bytes of the bound, as permits.
    room: Semaphore,
    /// Bytes queued now.
    queued: AtomicUsize,
    limit: u32,
}

/// The sending half; cheap to clone (one per input).
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<(Vec<Envelope>, u32)>,
    shared: Arc<Shared>,
}

/// The receiving half (the output's sender thread).
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<(Vec<Envelope>, u32)>,
    shared: Arc<Shared>,
}

/// A queue holding at most `limit_bytes` of encoded events (a single larger batch still passes,
/// alone).
pub fn channel(limit_bytes: usize) -> (EventSender, EventReceiver) {
    let limit = u32::try_from(limit_bytes).unwrap_or(u32::MAX).max(1);
    let shared = Arc::new(Shared { room: Semaphore::new(limit as usize), queued: AtomicUsize::new(0), limit });
    let (tx, rx) = mpsc::unbounded_channel();
    (EventSender { tx, shared: shared.clone() }, EventReceiver { rx, shared })
}

impl EventSender {
    /// Bytes a batch holds of the bound.
    fn cost(&self, batch: &[Envelope]) -> u32 {
        let bytes: usize = batch.iter().map(|e| e.payload.len() + e.key.as_ref().map_or(0, |k| k.len())).sum();
        u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.shared.limit)
    }

    /// Queues one event, waiting for room.
    pub async fn send(&self, envelope: Envelope) -> Result<(), Closed> {
        self.send_batch(vec![envelope]).await
    }

    /// Queues a batch, waiting for room.
    pub async fn send_batch(&self, batch: Vec<Envelope>) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let cost = self.cost(&batch);
        self.shared.room.acquire_many(cost).await.map_err(|_| Closed)?.forget();
        self.enqueue(batch, cost)
    }

    /// Queues a batch from a thread outside the async runtime, blocking it until there is room.
    pub fn blocking_send_batch(&self, batch: Vec<Envelope>) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let cost = self.cost(&batch);
        futures_executor::block_on(self.shared.room.acquire_many(cost)).map_err(|_| Closed)?.forget();
        self.enqueue(batch, cost)
    }

    fn enqueue(&self, batch: Vec<Envelope>, cost: u32) -> Result<(), Closed> {
        self.shared.queued.fetch_add(cost as usize, Ordering::AcqRel);
        self.tx.send((batch, cost)).map_err(|_| {
            self.shared.queued.fetch_sub(cost as usize, Ordering::AcqRel);
            Closed
        })
    }

    /// Bytes queued and not yet taken by the output.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }
}

impl EventReceiver {
    fn taken(&self, cost: u32) {
        self.shared.queued.fetch_sub(cost as usize, Ordering::AcqRel);
        self.shared.room.add_permits(cost as usize);
    }

    /// The next batch; None once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Vec<Envelope>> {
        let (batch, cost) = self.rx.recv().await?;
        self.taken(cost);
        Some(batch)
    }

    /// The next batch, from a thread outside the async runtime.
    pub fn blocking_recv(&mut self) -> Option<Vec<Envelope>> {
        let (batch, cost) = self.rx.blocking_recv()?;
        self.taken(cost);
        Some(batch)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        // Senders waiting for room learn that none will come.
        self.shared.room.close();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(bytes: usize) -> Envelope {
        Envelope { payload: vec![b'x'; bytes], input: "t".into(), topic: "t".into(), key: None, ack: None }
    }

    #[test]
    fn senders_wait_for_room_in_bytes() {
        let (tx, mut rx) = channel(100);
        tx.blocking_send_batch(vec![event(60)]).unwrap();
        assert_eq!(tx.queued_bytes(), 60);
        // 60 + 60 > 100: the second batch waits until the first is taken.
        let sender = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.blocking_send_batch(vec![event(30), event(30)]))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!sender.is_finished(), "the second batch must wait for room");
        assert_eq!(rx.blocking_recv().unwrap().len(), 1);
        sender.join().unwrap().unwrap();
        assert_eq!(rx.blocking_recv().unwrap().len(), 2);
        assert_eq!(tx.queued_bytes(), 0);
        // A batch over the whole bound still passes when the queue is empty.
        tx.blocking_send_batch(vec![event(500)]).unwrap();
        assert_eq!(rx.blocking_recv().unwrap()[0].payload.len(), 500);
    }

    #[test]
    fn a_closed_receiver_releases_waiting_senders() {
        let (tx, rx) = channel(10);
        tx.blocking_send_batch(vec![event(10)]).unwrap();
        let sender = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.blocking_send_batch(vec![event(10)]))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(rx);
        assert!(sender.join().unwrap().is_err());
        assert!(tx.blocking_send_batch(vec![event(1)]).is_err());
    }
}
