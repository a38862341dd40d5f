//! The async half of a sink: writes one batch until every record is accepted by the destination
//! or kept as a dead letter, retrying what is refused for now (backoff with jitter, `Retry-After`
//! honoured) and giving up only at the drain deadline.

use super::batch::Batch;
use crate::dead_letter::DeadLetters;
use crate::destination::{Destination, Verdict, WriteFailure};
use crate::metrics::SinkMetrics;
use crate::record::SourceRecord;
use crate::retry::Backoff;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the writing of a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every record accepted or dead-lettered: the batch's offsets may be committed.
    Written,
    /// The drain deadline passed first: nothing of it may be committed, so all of it is read
    /// again.
    Abandoned,
}

/// Writes batches to a destination, with dead letters for what it refuses for good.
pub struct Writer<D, L> {
    /// The sink's name, for logs and metrics.
    pub name: String,
    /// Where records go.
    pub destination: Arc<D>,
    /// Where refused records go; without it they are logged and skipped.
    pub dead_letters: Option<L>,
    /// Counters.
    pub metrics: Arc<SinkMetrics>,
    /// First and largest wait between attempts.
    pub backoff: (Duration, Duration),
    /// Turns true at the drain deadline: stop retrying.
    pub abandon: watch::Receiver<bool>,
}

impl<D: Destination, L: DeadLetters> Writer<D, L> {
    /// Sleeps `wait`; false if the drain deadline passed meanwhile.
    async fn pause(&self, wait: Duration) -> bool {
        let mut abandon = self.abandon.clone();
        if *abandon.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = abandon.wait_for(|a| *a) => false,
        }
    }

    /// Writes `batch`: records refused for now are written again until they are accepted, those
    /// refused for good (or that could not be encoded) go to the dead letters.
    pub async fn deliver(&self, batch: &Batch) -> Delivery {
        let started = Instant::now();
        let sink = self.name.as_str();
        let records = batch.len();
        self.metrics.batch_records.with_label_values(&[sink]).observe(records as f64);
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let mut pending: Vec<usize> = Vec::new();
        for i in 0..records {
            match batch.encoded(i) {
                Ok(_) => pending.push(i),
                Err(e) => rejected.push((i, e.to_string())),
            }
        }
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        while !pending.is_empty() {
            let bodies: Vec<&[u8]> = pending.iter().filter_map(|&i| batch.encoded(i).ok()).collect();
            // A verdict missing would leave its record neither written nor retried, yet committed.
            let answer = self.destination.write(&bodies).await.and_then(|verdicts| {
                if verdicts.len() == bodies.len() {
                    Ok(verdicts)
                } else {
                    let reason = format!("{} verdicts for {} records", verdicts.len(), bodies.len());
                    Err(WriteFailure { reason, retry_after: None })
                }
            });
            match answer {
                Ok(verdicts) => {
                    let mut retry = Vec::new();
                    let mut accepted = 0u64;
                    let mut reason = None;
                    for (&i, verdict) in pending.iter().zip(verdicts) {
                        match verdict {
                            Verdict::Accepted => accepted += 1,
                            Verdict::Retry(why) => {
                                retry.push(i);
                                reason.get_or_insert(why);
                            }
                            Verdict::Reject(why) => rejected.push((i, why)),
                        }
                    }
                    self.metrics.forwarded.with_label_values(&[sink]).inc_by(accepted);
                    match &reason {
                        Some(why) if accepted == 0 => self.metrics.destination_failing(sink, why),
                        _ => self.metrics.destination_ok(sink),
                    }
                    pending = retry;
                    if let Some(reason) = reason {
                        self.metrics.retried.with_label_values(&[sink]).inc_by(pending.len() as u64);
                        let wait = backoff.next_wait();
                        tracing::warn!(sink, records = pending.len(), %reason, ?wait, "records refused for now; retrying them");
                        if !self.pause(wait).await {
                            return Delivery::Abandoned;
                        }
                    }
                }
                Err(failure) => {
                    self.metrics.write_failures.with_label_values(&[sink]).inc();
                    self.metrics.destination_failing(sink, &failure.reason);
                    let wait = failure.retry_after.unwrap_or_else(|| backoff.next_wait());
                    tracing::warn!(sink, records = pending.len(), reason = %failure.reason, attempt = backoff.attempts(), ?wait, "write failed; retrying");
                    if !self.pause(wait).await {
                        return Delivery::Abandoned;
                    }
                }
            }
        }
        for (i, error) in rejected {
            if !self.dead_letter(&batch.record(i), &error).await {
                return Delivery::Abandoned;
            }
        }
        self.metrics.batch_seconds.with_label_values(&[sink]).observe(started.elapsed().as_secs_f64());
        tracing::debug!(sink, records, written_ms = started.elapsed().as_millis() as u64, "batch done");
        Delivery::Written
    }

    /// Sends one refused record to the dead letters, retrying until they take it; false if the
    /// drain deadline passed first.
    async fn dead_letter(&self, record: &SourceRecord<'_>, error: &str) -> bool {
        let sink = self.name.as_str();
        self.metrics.dead_lettered.with_label_values(&[sink]).inc();
        let Some(dead_letters) = &self.dead_letters else {
            tracing::error!(sink, origin = %record.origin(), %error, "record refused for good and no dead_letter_topic is configured; skipped");
            return true;
        };
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        loop {
            match dead_letters.send(record, error).await {
                Ok(()) => {
                    tracing::warn!(sink, origin = %record.origin(), %error, topic = dead_letters.topic(), "record refused for good; sent to the dead-letter topic");
                    return true;
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(sink, error = %e, ?wait, "writing to the dead-letter topic failed; retrying");
                    if !self.pause(wait).await {
                        return false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    type Answer = dyn Fn(usize, &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> + Send + Sync;

    /// A destination answering each write with `answer(write number, bodies)`; it keeps every
    /// write's bodies. Encodes a payload as itself and a newline, and refuses to encode payloads
    /// starting with `bad`.
    struct FakeDestination {
        answer: Box<Answer>,
        sent: Mutex<Vec<Vec<String>>>,
    }

    impl FakeDestination {
        fn new(answer: impl Fn(usize, &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> + Send + Sync + 'static) -> Self {
            FakeDestination { answer: Box::new(answer), sent: Mutex::default() }
        }

        fn sent(&self) -> Vec<Vec<String>> {
            self.sent.lock().unwrap().clone()
        }
    }

    impl Destination for FakeDestination {
        fn kind(&self) -> &'static str {
            "fake"
        }

        fn encode(&self, record: &SourceRecord<'_>, out: &mut Vec<u8>) -> Result<(), String> {
            if record.payload.starts_with(b"bad") {
                return Err("not a document".into());
            }
            out.extend_from_slice(record.payload);
            out.push(b'\n');
            Ok(())
        }

        async fn write(&self, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
            let call = {
                let mut sent = self.sent.lock().unwrap();
                sent.push(items.iter().map(|i| String::from_utf8_lossy(i).trim_end().to_string()).collect());
                sent.len() - 1
            };
            (self.answer)(call, items)
        }
    }

    fn accept_all(_: usize, items: &[&[u8]]) -> Result<Vec<Verdict>, WriteFailure> {
        Ok(vec![Verdict::Accepted; items.len()])
    }

    fn failure(reason: &str, retry_after: Option<Duration>) -> WriteFailure {
        WriteFailure { reason: reason.into(), retry_after }
    }

    /// A dead letter as kept: origin, key, payload and error.
    type Kept = (String, Option<Vec<u8>>, Vec<u8>, String);

    #[derive(Debug, thiserror::Error)]
    #[error("the broker is down")]
    struct Down;

    /// Dead letters that fail the first `failures` sends (all of them with `usize::MAX`).
    #[derive(Default)]
    struct FakeDeadLetters {
        failures: usize,
        attempts: AtomicUsize,
        kept: Mutex<Vec<Kept>>,
    }

    impl DeadLetters for FakeDeadLetters {
        type Error = Down;

        fn topic(&self) -> &str {
            "dead-letters"
        }

        async fn send(&self, record: &SourceRecord<'_>, error: &str) -> Result<(), Down> {
            if self.attempts.fetch_add(1, Ordering::SeqCst) < self.failures {
                return Err(Down);
            }
            let kept = (record.origin(), record.key.map(<[u8]>::to_vec), record.payload.to_vec(), error.to_string());
            self.kept.lock().unwrap().push(kept);
            Ok(())
        }
    }

    struct Setup {
        writer: Writer<FakeDestination, FakeDeadLetters>,
        abandon: watch::Sender<bool>,
    }

    impl Setup {
        /// Waits of a millisecond or two between attempts.
        fn new(destination: FakeDestination, dead_letters: Option<FakeDeadLetters>) -> Setup {
            let (abandon, abandoned) = watch::channel(false);
            let writer = Writer {
                name: "test".into(),
                destination: Arc::new(destination),
                dead_letters,
                metrics: Arc::new(SinkMetrics::new().unwrap()),
                backoff: (Duration::from_millis(1), Duration::from_millis(2)),
                abandon: abandoned,
            };
            Setup { writer, abandon }
        }

        /// A batch of `payloads` from partition 0 of `logs`, at offsets from 100, keys `k<offset>`.
        fn batch(&self, payloads: &[&str]) -> Batch {
            let topic: Arc<str> = Arc::from("logs");
            let mut batch = Batch::default();
            for (offset, payload) in (100..).zip(payloads) {
                let key = format!("k{offset}");
                let record = SourceRecord {
                    topic: "logs",
                    partition: 0,
                    offset,
                    key: Some(key.as_bytes()),
                    payload: payload.as_bytes(),
                    timestamp_ms: None,
                    replayed_from: None,
                };
                batch.push(&topic, &record, &*self.writer.destination);
            }
            batch
        }

        /// Passes the drain deadline `ms` milliseconds from now.
        async fn abandon_after(&self, ms: u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let _ = self.abandon.send(true);
        }

        fn counter(&self, counter: &prometheus::IntCounterVec) -> u64 {
            counter.with_label_values(&["test"]).get()
        }

        fn forwarded(&self) -> u64 {
            self.counter(&self.writer.metrics.forwarded)
        }

        fn retried(&self) -> u64 {
            self.counter(&self.writer.metrics.retried)
        }

        fn write_failures(&self) -> u64 {
            self.counter(&self.writer.metrics.write_failures)
        }

        fn dead_lettered(&self) -> u64 {
            self.counter(&self.writer.metrics.dead_lettered)
        }

        fn kept(&self) -> Vec<Kept> {
            self.writer.dead_letters.as_ref().map(|d| d.kept.lock().unwrap().clone()).unwrap_or_default()
        }
    }

    fn strings(parts: &[&[&str]]) -> Vec<Vec<String>> {
        parts.iter().map(|p| p.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[tokio::test]
    async fn an_accepted_batch_is_written_once() {
        let setup = Setup::new(FakeDestination::new(accept_all), Some(FakeDeadLetters::default()));
        let delivery = setup.writer.deliver(&setup.batch(&["a", "b", "c"])).await;
        assert_eq!(delivery, Delivery::Written);
        assert_eq!(setup.writer.destination.sent(), strings(&[&["a", "b", "c"]]));
        assert_eq!((setup.forwarded(), setup.retried(), setup.write_failures(), setup.dead_lettered()), (3, 0, 0, 0));
        let batches = setup.writer.metrics.batch_records.with_label_values(&["test"]);
        assert_eq!((batches.get_sample_count(), batches.get_sample_sum()), (1, 3.0));
        assert!(setup.kept().is_empty());
    }

    #[tokio::test]
    async fn records_refused_for_now_are_written_again_alone_until_accepted() {
        let destination = FakeDestination::new(|call, items| {
            let retry = || Verdict::Retry("429 es_rejected_execution_exception".into());
            Ok(match call {
                0 => vec![Verdict::Accepted, retry(), Verdict::Accepted, retry()],
                1 => vec![retry(), Verdict::Accepted],
                _ => vec![Verdict::Accepted; items.len()],
            })
        });
        let setup = Setup::new(destination, Some(FakeDeadLetters::default()));
        let delivery = setup.writer.deliver(&setup.batch(&["a", "b", "c", "d"])).await;
        assert_eq!(delivery, Delivery::Written);
        assert_eq!(setup.writer.destination.sent(), strings(&[&["a", "b", "c", "d"], &["b", "d"], &["b"]]));
        assert_eq!((setup.forwarded(), setup.retried(), setup.write_failures()), (4, 3, 0));
        assert!(setup.kept().is_empty(), "nothing refused for good");
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_whole_after_the_destinations_retry_after() {
        let destination = FakeDestination::new(|call, items| {
            if call < 2 {
                return Err(failure("HTTP 503: unavailable", Some(Duration::from_millis(20))));
            }
            accept_all(call, items)
        });
        let mut setup = Setup::new(destination, None);
        // A backoff far longer than the test: only the destination's Retry-After can be waited.
        setup.writer.backoff = (Duration::from_secs(600), Duration::from_secs(600));
        let started = Instant::now();
        let delivery = tokio::time::timeout(Duration::from_secs(60), setup.writer.deliver(&setup.batch(&["a", "b"])))
            .await
            .unwrap();
        assert_eq!(delivery, Delivery::Written);
        assert!(started.elapsed() >= Duration::from_millis(40), "{:?}", started.elapsed());
        assert_eq!(setup.writer.destination.sent(), strings(&[&["a", "b"], &["a", "b"], &["a", "b"]]));
        assert_eq!((setup.forwarded(), setup.retried(), setup.write_failures()), (2, 0, 2));
    }

    #[tokio::test]
    async fn a_failed_write_without_retry_after_waits_the_backoff() {
        let destination = FakeDestination::new(|call, items| {
            if call < 3 {
                return Err(failure("connection refused", None));
            }
            accept_all(call, items)
        });
        let mut setup = Setup::new(destination, None);
        setup.writer.backoff = (Duration::from_millis(10), Duration::from_millis(40));
        let started = Instant::now();
        assert_eq!(setup.writer.deliver(&setup.batch(&["a"])).await, Delivery::Written);
        // At least half of each ceiling: 5 + 10 + 20 ms.
        assert!(started.elapsed() >= Duration::from_millis(35), "{:?}", started.elapsed());
        assert_eq!((setup.writer.destination.sent().len(), setup.write_failures()), (4, 3));
    }

    #[tokio::test]
    async fn records_refused_for_good_or_unencodable_go_to_the_dead_letters_unchanged() {
        let destination = FakeDestination::new(|_, items| {
            Ok(items
                .iter()
                .map(|i| match i.starts_with(b"conflict") {
                    true => Verdict::Reject("400 mapper_parsing_exception: failed to parse field [status]".into()),
                    false => Verdict::Accepted,
                })
                .collect())
        });
        let setup = Setup::new(destination, Some(FakeDeadLetters::default()));
        let delivery = setup.writer.deliver(&setup.batch(&["ok", "bad record", "conflict", "fine"])).await;
        assert_eq!(delivery, Delivery::Written);
        assert_eq!(setup.writer.destination.sent(), strings(&[&["ok", "conflict", "fine"]]), "unencodable not sent");
        let kept = setup.kept();
        assert_eq!(
            kept,
            vec![
                ("logs/0@101".into(), Some(b"k101".to_vec()), b"bad record".to_vec(), "not a document".into()),
                (
                    "logs/0@102".into(),
                    Some(b"k102".to_vec()),
                    b"conflict".to_vec(),
                    "400 mapper_parsing_exception: failed to parse field [status]".into()
                ),
            ]
        );
        assert_eq!((setup.forwarded(), setup.dead_lettered(), setup.retried()), (2, 2, 0));
    }

    #[tokio::test]
    async fn accepted_retried_and_rejected_in_one_answer_each_meet_their_fate() {
        let destination = FakeDestination::new(|call, items| match call {
            0 => Ok(vec![Verdict::Reject("invalid point".into()), Verdict::Retry("busy".into()), Verdict::Accepted]),
            _ => Ok(vec![Verdict::Accepted; items.len()]),
        });
        let setup = Setup::new(destination, Some(FakeDeadLetters::default()));
        assert_eq!(setup.writer.deliver(&setup.batch(&["x", "y", "z"])).await, Delivery::Written);
        assert_eq!(setup.writer.destination.sent(), strings(&[&["x", "y", "z"], &["y"]]));
        let kept: Vec<(String, String)> =
            setup.kept().into_iter().map(|(origin, _, _, error)| (origin, error)).collect();
        assert_eq!(kept, vec![("logs/0@100".to_string(), "invalid point".to_string())]);
        assert_eq!((setup.forwarded(), setup.retried(), setup.dead_lettered()), (2, 1, 1));
    }

    #[tokio::test]
    async fn without_a_dead_letter_topic_refused_records_are_counted_and_skipped() {
        let destination = FakeDestination::new(|_, items| Ok(vec![Verdict::Reject("no".into()); items.len()]));
        let setup = Setup::new(destination, None);
        assert_eq!(setup.writer.deliver(&setup.batch(&["a", "bad"])).await, Delivery::Written);
        assert_eq!((setup.forwarded(), setup.dead_lettered()), (0, 2));
    }

    #[tokio::test]
    async fn a_batch_of_unencodable_records_never_reaches_the_destination() {
        let setup = Setup::new(FakeDestination::new(accept_all), Some(FakeDeadLetters::default()));
        assert_eq!(setup.writer.deliver(&setup.batch(&["bad one", "bad two"])).await, Delivery::Written);
        assert!(setup.writer.destination.sent().is_empty());
        assert_eq!(setup.kept().len(), 2);
    }

    #[tokio::test]
    async fn a_dead_letter_is_sent_again_until_the_topic_takes_it() {
        let destination = FakeDestination::new(|_, items| Ok(vec![Verdict::Reject("no".into()); items.len()]));
        let setup = Setup::new(destination, Some(FakeDeadLetters { failures: 2, ..FakeDeadLetters::default() }));
        assert_eq!(setup.writer.deliver(&setup.batch(&["a"])).await, Delivery::Written);
        let dead_letters = setup.writer.dead_letters.as_ref().unwrap();
        assert_eq!(dead_letters.attempts.load(Ordering::SeqCst), 3);
        assert_eq!(setup.kept().len(), 1);
        assert_eq!(setup.dead_lettered(), 1, "counted once, however many sends it took");
    }

    #[tokio::test]
    async fn a_wrong_number_of_verdicts_is_a_failed_write() {
        let destination = FakeDestination::new(|call, items| match call {
            0 => Ok(vec![Verdict::Accepted]),
            _ => accept_all(call, items),
        });
        let setup = Setup::new(destination, None);
        assert_eq!(setup.writer.deliver(&setup.batch(&["a", "b"])).await, Delivery::Written);
        assert_eq!(setup.writer.destination.sent(), strings(&[&["a", "b"], &["a", "b"]]));
        assert_eq!((setup.forwarded(), setup.write_failures()), (2, 1));
    }

    #[tokio::test]
    async fn the_drain_deadline_abandons_a_batch_the_destination_keeps_refusing() {
        let destination = FakeDestination::new(|_, _| Err(failure("HTTP 503", None)));
        let setup = Setup::new(destination, None);
        let batch = setup.batch(&["a"]);
        let (delivery, ()) = tokio::join!(setup.writer.deliver(&batch), setup.abandon_after(30));
        assert_eq!(delivery, Delivery::Abandoned);
        assert!(setup.writer.destination.sent().len() > 1, "retried until the deadline");
        // Past the deadline, a batch gets one attempt.
        let tries = setup.writer.destination.sent().len();
        assert_eq!(setup.writer.deliver(&setup.batch(&["b"])).await, Delivery::Abandoned);
        assert_eq!(setup.writer.destination.sent().len(), tries + 1);
    }

    #[tokio::test]
    async fn the_drain_deadline_abandons_a_batch_whose_dead_letter_is_not_taken() {
        let destination = FakeDestination::new(|_, items| Ok(vec![Verdict::Reject("no".into()); items.len()]));
        let setup =
            Setup::new(destination, Some(FakeDeadLetters { failures: usize::MAX, ..FakeDeadLetters::default() }));
        let batch = setup.batch(&["a", "b"]);
        let (delivery, ()) = tokio::join!(setup.writer.deliver(&batch), setup.abandon_after(30));
        assert_eq!(delivery, Delivery::Abandoned);
        assert!(setup.kept().is_empty());
    }
}
