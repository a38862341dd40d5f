//! Field values and counter rates shared by the collectors: integer fields, percentages, rates of
//! cumulative counters and the per-device history they are derived from.

use crate::event::FieldValue;
use std::collections::HashMap;
use std::time::SystemTime;

/// An integer field; counters beyond `i64::MAX` (which no real counter reaches) saturate.
pub(super) fn int(value: u64) -> FieldValue {
    FieldValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

pub(super) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Seconds since the previous reading, if there was one and the clock moved forward.
pub(super) fn elapsed_secs(prev: Option<SystemTime>, now: SystemTime) -> Option<f64> {
    let elapsed = now.duration_since(prev?).ok()?;
    (!elapsed.is_zero()).then_some(elapsed.as_secs_f64())
}

/// Rate of a cumulative counter; `None` when it went backwards (wrapped or reset), because the
/// increase over the interval is then unknown.
pub(crate) fn per_sec(current: u64, previous: u64, secs: f64) -> Option<f64> {
    current.checked_sub(previous).map(|delta| delta as f64 / secs)
}

/// Last counters per device or interface, and when they were read.
#[derive(Debug, Default)]
pub(super) struct CounterHistory {
    pub(super) at: Option<SystemTime>,
    pub(super) values: HashMap<String, [u64; 2]>,
}

impl CounterHistory {
    /// Removes the entry of `name`, returning its key (to reuse the allocation) and counters.
    pub(super) fn take(&mut self, name: &str) -> (String, Option<[u64; 2]>) {
        match self.values.remove_entry(name) {
            Some((key, values)) => (key, Some(values)),
            None => (name.to_string(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::host_metrics::fixtures::at;

    #[test]
    fn rates_never_go_negative() {
        assert_eq!(per_sec(3000, 1000, 2.0), Some(1000.0));
        assert_eq!(per_sec(1000, 1000, 10.0), Some(0.0));
        assert_eq!(per_sec(10, u64::from(u32::MAX) - 5, 10.0), None); // a 32-bit counter wrapped
        assert_eq!(elapsed_secs(Some(at(10)), at(0)), None); // clock stepped back
        assert_eq!(elapsed_secs(Some(at(0)), at(0)), None);
        assert_eq!(elapsed_secs(None, at(0)), None);
    }
}
