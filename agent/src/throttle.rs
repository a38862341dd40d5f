//! Rate limiting of a repeated failure's log line: a full disk fails every checkpoint interval
//! (five times a second with `checkpoint_interval = "200ms"`), and a log flooded with one line
//! hides everything else. The first failure is logged at once, then one line per interval with
//! the number left out; the recovery is logged once.

use std::time::{Duration, Instant};

/// How often a failure that keeps happening is logged again.
pub const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// The state of one kind of failure.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last_logged: Option<Instant>,
    /// Failures since the last logged one.
    left_out: u64,
    failing: bool,
}

impl Throttle {
    /// A throttle logging at most once per `every`.
    pub fn new(every: Duration) -> Throttle {
        Throttle { every, last_logged: None, left_out: 0, failing: false }
    }

    /// A failure at `now`: `Some(n)` when it is to be logged (`n` failures were left out since
    /// the last line), `None` when it is left out.
    pub fn failure(&mut self, now: Instant) -> Option<u64> {
        self.failing = true;
        match self.last_logged {
            Some(at) if now.saturating_duration_since(at) < self.every => {
                self.left_out += 1;
                None
            }
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.left_out))
            }
        }
    }

    /// A success: true when it ends a run of failures (log the recovery once). The next failure
    /// is logged at once.
    pub fn success(&mut self) -> bool {
        let recovered = self.failing;
        self.failing = false;
        self.last_logged = None;
        self.left_out = 0;
        recovered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_failure_is_logged_once_per_interval_and_its_end_once() {
        let mut throttle = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(!throttle.success(), "no failure yet, nothing recovered");
        assert_eq!(throttle.failure(start), Some(0));
        // Every 200 ms for a minute: all left out.
        for i in 1..300 {
            assert_eq!(throttle.failure(start + Duration::from_millis(200 * i)), None);
        }
        assert_eq!(throttle.failure(start + Duration::from_secs(60)), Some(299));
        assert_eq!(throttle.failure(start + Duration::from_secs(61)), None);
        assert!(throttle.success());
        assert!(!throttle.success(), "the recovery is logged once");
        // A new run of failures is logged at once.
        assert_eq!(throttle.failure(start + Duration::from_secs(62)), Some(0));
    }
}
