//! Numbers, sizes, rates and times as the tables show them ("-" when unknown).

use std::time::SystemTime;

/// How long ago `then` was at `now`: `4s`, `2m05s`, `1h02m`, `3d04h`.
pub fn age(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).map_or(0, |d| d.as_secs());
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3_600..86_400 => format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3_600),
    }
}

/// Time of day of `at`, UTC (`14:03:27 UTC`).
pub fn clock(at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

/// An integer with thousands separators (`1,234,567`).
pub fn count(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A group's total lag; `≥` when some partitions' lag is unknown.
pub fn total_lag(total: i64, unknown: usize) -> String {
    if unknown > 0 {
        format!("≥{}", count(total))
    } else {
        count(total)
    }
}

/// An optional offset or count.
pub fn opt_count(value: Option<i64>) -> String {
    value.map_or("-".to_string(), count)
}

/// A per-second rate: `12/s`, `3.4k/s`, `1.2M/s`.
pub fn rate(value: Option<f64>) -> String {
    match value {
        None => "-".to_string(),
        Some(v) if v < 10.0 => format!("{v:.1}/s"),
        Some(v) if v < 1_000.0 => format!("{v:.0}/s"),
        Some(v) if v < 1_000_000.0 => format!("{:.1}k/s", v / 1_000.0),
        Some(v) => format!("{:.1}M/s", v / 1_000_000.0),
    }
}

/// A byte size: `512 B`, `3.0 KiB`, `1.2 MiB`, `4.0 GiB`.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if value < 1024 {
        return format!("{value} B");
    }
    let mut v = value as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An optional byte size.
pub fn opt_bytes(value: Option<u64>) -> String {
    value.map_or("-".to_string(), bytes)
}

/// Bytes per second.
pub fn bytes_rate(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{}/s", bytes(v.max(0.0) as u64)))
}

/// Broker ids, comma-separated.
pub fn ids(values: &[i32]) -> String {
    if values.is_empty() {
        return "-".to_string();
    }
    values.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// The last `width` values as block characters scaled to their maximum.
pub fn mini_sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let window = &values[values.len().saturating_sub(width)..];
    let max = window.iter().copied().max().unwrap_or(0);
    window
        .iter()
        .map(|v| if max == 0 { BARS[0] } else { BARS[((*v as f64 / max as f64) * 7.0).round() as usize] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(age(t + Duration::from_secs(125), t), "2m05s");
        assert_eq!(age(t, t + Duration::from_secs(5)), "0s", "clock skew");
        assert_eq!(age(t + Duration::from_secs(7_300), t), "2h01m");
        assert_eq!(clock(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 3_723)), "01:02:03 UTC");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1_000), "-1,000");
        assert_eq!(count(999), "999");
        assert_eq!(rate(Some(2.5)), "2.5/s");
        assert_eq!(rate(Some(3_400.0)), "3.4k/s");
        assert_eq!(rate(None), "-");
        assert_eq!(bytes(3_145_728), "3.0 MiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes_rate(Some(25_000.0)), "24.4 KiB/s");
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(mini_sparkline(&[0, 7, 14], 10), "▁▅█");
        assert_eq!(mini_sparkline(&[0, 0], 10), "▁▁");
        assert_eq!(mini_sparkline(&[1, 2, 3, 4], 2), "▆█");
    }
}
