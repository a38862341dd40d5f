//! Exponential backoff with full jitter: retries of many workers do not arrive in lockstep.

use std::time::Duration;

/// Backoff state of one batch.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max: max.max(initial), attempt: 0 }
    }

    /// The wait before the next attempt: a random duration between half and all of the current
    /// ceiling, which doubles each time.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.initial.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_ceiling_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait()).collect();
        for (i, w) in waits.iter().enumerate() {
            let ceiling = Duration::from_millis((100u64 << i).min(1000));
            assert!(*w >= ceiling / 2 && *w <= ceiling, "attempt {i}: {w:?} not within {ceiling:?}");
        }
        assert_eq!(b.attempts(), 8);
    }
}
