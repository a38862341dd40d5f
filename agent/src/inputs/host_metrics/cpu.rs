//! The `cpu` collector: `/proc/stat` parsed into jiffies per state, and their shares of the
//! interval as `cpu` points.

use super::counters::percent;
use super::proc_file::ParseError;
use super::HostMetricsSampler;
use crate::event::{FieldValue, MetricPoint};
use std::time::SystemTime;

/// Field names of [`CpuTimes`], in `/proc/stat` column order.
const CPU_FIELDS: [&str; 8] = [
    "usage_user",
    "usage_nice",
    "usage_system",
    "usage_idle",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
];

/// Jiffies of one `cpu` line: user, nice, system, idle, iowait, irq, softirq, steal (the later
/// `guest` columns are already included in user and nice).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes(pub(crate) [u64; 8]);

/// The `cpu` lines of `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CpuStat {
    /// The aggregate `cpu` line.
    pub(crate) total: CpuTimes,
    /// `(N, times)` of each `cpuN` line, in file order.
    pub(crate) per_cpu: Vec<(u32, CpuTimes)>,
}

/// Parses `/proc/stat` into `out`, reusing its vector. Kernels older than 2.6.11 have fewer than
/// eight columns; the missing ones are 0.
pub(crate) fn parse_stat(text: &str, out: &mut CpuStat) -> Result<(), ParseError> {
    out.per_cpu.clear();
    let mut total = None;
    for (index, line) in text.lines().enumerate() {
        let mut columns = line.split_ascii_whitespace();
        let Some(label) = columns.next() else { continue };
        let Some(suffix) = label.strip_prefix("cpu") else {
            if total.is_some() {
                break; // the cpu lines come first; the long `intr` line and the rest are not needed
            }
            continue;
        };
        let mut jiffies = [0u64; 8];
        let mut found = 0;
        for (slot, column) in jiffies.iter_mut().zip(columns) {
            *slot = column.parse().map_err(|_| ParseError::at(index, "a cpu time is not a number"))?;
            found += 1;
        }
        if found < 4 {
            return Err(ParseError::at(index, "a cpu line has fewer than four times"));
        }
        if suffix.is_empty() {
            total = Some(CpuTimes(jiffies));
        } else {
            let n = suffix.parse().map_err(|_| ParseError::at(index, "a cpu line is not named cpuN"))?;
            out.per_cpu.push((n, CpuTimes(jiffies)));
        }
    }
    out.total = total.ok_or(ParseError::whole("no aggregate `cpu` line"))?;
    Ok(())
}

/// Percentage of the interval spent in each state, or `None` when there is nothing to report: no
/// jiffy passed, or the counters were reset (their sum went backwards).
pub(crate) fn cpu_usage(prev: &CpuTimes, cur: &CpuTimes) -> Option<[f64; 8]> {
    let sum = |t: &CpuTimes| t.0.iter().fold(0u64, |acc, v| acc.saturating_add(*v));
    if sum(cur) < sum(prev) {
        return None;
    }
    // A single state may go backwards (proc(5) says so of iowait): count it as no time.
    let deltas: [u64; 8] = std::array::from_fn(|i| cur.0[i].saturating_sub(prev.0[i]));
    let total: u64 = deltas.iter().sum();
    if total == 0 {
        return None;
    }
    Some(deltas.map(|d| percent(d, total)))
}

fn cpu_point(cpu: String, usage: &[f64; 8], now: SystemTime) -> MetricPoint {
    let mut point = MetricPoint::new("cpu", now).tag("cpu", cpu);
    for (name, value) in CPU_FIELDS.iter().zip(usage) {
        point = point.field(*name, FieldValue::Float(*value));
    }
    point
}

impl HostMetricsSampler {
    /// `cpu` points from `cpu_cur` against `cpu_prev`, then keeps `cpu_cur` as the new baseline.
    pub(super) fn emit_cpu(&mut self, now: SystemTime, per_cpu: bool, out: &mut Vec<MetricPoint>) {
        if let Some(prev) = &self.cpu_prev {
            if let Some(usage) = cpu_usage(&prev.total, &self.cpu_cur.total) {
                out.push(cpu_point("cpu-total".to_string(), &usage, now));
            }
            if per_cpu {
                for (i, (n, cur)) in self.cpu_cur.per_cpu.iter().enumerate() {
                    // CPUs are listed in the same order each time unless one went offline.
                    let before = match prev.per_cpu.get(i) {
                        Some((m, times)) if m == n => Some(times),
                        _ => prev.per_cpu.iter().find(|(m, _)| m == n).map(|(_, times)| times),
                    };
                    if let Some(usage) = before.and_then(|before| cpu_usage(before, cur)) {
                        out.push(cpu_point(format!("cpu{n}"), &usage, now));
                    }
                }
            }
        }
        // Swap rather than clone so both vectors keep their allocations.
        match &mut self.cpu_prev {
            Some(prev) => std::mem::swap(prev, &mut self.cpu_cur),
            None => self.cpu_prev = Some(std::mem::take(&mut self.cpu_cur)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::host_metrics::fixtures::STAT;

    #[test]
    fn parses_proc_stat() {
        let mut stat = CpuStat::default();
        parse_stat(STAT, &mut stat).unwrap();
        assert_eq!(stat.total, CpuTimes([1000, 100, 500, 8000, 200, 0, 50, 0]));
        assert_eq!(stat.per_cpu.len(), 2);
        assert_eq!(stat.per_cpu[1], (1, CpuTimes([500, 50, 250, 4000, 100, 0, 25, 0])));

        // An old kernel (no steal, guest), sparse CPU numbers (cpu1 offline); the vector is reused.
        parse_stat("cpu 10 0 5 100 1 0 0\ncpu0 6 0 3 50 1 0 0\ncpu2 4 0 2 50 0 0 0\n", &mut stat).unwrap();
        assert_eq!(stat.total, CpuTimes([10, 0, 5, 100, 1, 0, 0, 0]));
        assert_eq!(stat.per_cpu.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 2]);

        assert_eq!(parse_stat("intr 1 2 3\n", &mut stat), Err(ParseError::whole("no aggregate `cpu` line")));
        assert_eq!(parse_stat("cpu 1 2 x 4\n", &mut stat).unwrap_err().line, 1);
        assert_eq!(parse_stat("cpu 1 2 3 4\ncpu0 1 2\n", &mut stat).unwrap_err().line, 2);
        assert_eq!(parse_stat("cpu 1 2 3 4\ncpuX 1 2 3 4\n", &mut stat).unwrap_err().line, 2);
    }

    #[test]
    fn cpu_usage_is_a_share_of_the_interval() {
        let prev = CpuTimes([100, 0, 50, 800, 10, 0, 0, 0]);
        let cur = CpuTimes([150, 0, 75, 820, 15, 0, 0, 0]);
        let usage = cpu_usage(&prev, &cur).unwrap();
        assert_eq!(usage, [50.0, 0.0, 25.0, 20.0, 5.0, 0.0, 0.0, 0.0]);
        // No jiffy passed.
        assert_eq!(cpu_usage(&cur, &cur), None);
        // iowait going backwards counts as 0, and the rest still adds up to 100.
        let usage = cpu_usage(&prev, &CpuTimes([150, 0, 50, 850, 5, 0, 0, 0])).unwrap();
        assert_eq!(usage, [50.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0]);
        // The sum went backwards: counters were reset.
        assert_eq!(cpu_usage(&cur, &prev), None);
    }
}
