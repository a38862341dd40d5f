//! The `mem` and `swap` collectors: `/proc/meminfo` parsed once and turned into both points.

use super::counters::{int, percent};
use super::proc_file::{HostMetricsError, ParseError};
use crate::event::{FieldValue, MetricPoint};
use std::path::Path;
use std::time::SystemTime;

/// The `/proc/meminfo` values used, in bytes; `None` when the line is absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub(crate) mem_total: Option<u64>,
    pub(crate) mem_free: Option<u64>,
    pub(crate) mem_available: Option<u64>,
    pub(crate) buffers: Option<u64>,
    pub(crate) cached: Option<u64>,
    pub(crate) s_reclaimable: Option<u64>,
    pub(crate) swap_total: Option<u64>,
    pub(crate) swap_free: Option<u64>,
}

/// Parses `/proc/meminfo` (`Key:   value kB` lines). Only the keys used are checked, so a line
/// this code does not know cannot break it.
pub(crate) fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut info = MemInfo::default();
    for (index, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let slot = match key {
            "MemTotal" => &mut info.mem_total,
            "MemFree" => &mut info.mem_free,
            "MemAvailable" => &mut info.mem_available,
            "Buffers" => &mut info.buffers,
            "Cached" => &mut info.cached,
            "SReclaimable" => &mut info.s_reclaimable,
            "SwapTotal" => &mut info.swap_total,
            "SwapFree" => &mut info.swap_free,
            _ => continue,
        };
        let mut parts = rest.split_ascii_whitespace();
        let value: u64 =
            parts.next().and_then(|v| v.parse().ok()).ok_or(ParseError::at(index, "the value is not a number"))?;
        *slot = Some(match parts.next() {
            Some("kB") => value.saturating_mul(1024),
            None => value,
            Some(_) => return Err(ParseError::at(index, "the unit is not kB")),
        });
    }
    Ok(info)
}

fn missing(path: &Path, reason: &'static str) -> HostMetricsError {
    HostMetricsError::Parse { path: path.to_path_buf(), source: ParseError::whole(reason) }
}

pub(super) fn emit_mem(
    info: &MemInfo,
    path: &Path,
    now: SystemTime,
    out: &mut Vec<MetricPoint>,
) -> Result<(), HostMetricsError> {
    let total = info.mem_total.filter(|t| *t > 0).ok_or_else(|| missing(path, "no MemTotal line, or it is 0"))?;
    let free = info.mem_free.ok_or_else(|| missing(path, "no MemFree line"))?;
    // Before Linux 3.14 there is no MemAvailable; estimate it as tools did then.
    let available = info.mem_available.unwrap_or_else(|| {
        [Some(free), info.buffers, info.cached, info.s_reclaimable]
            .iter()
            .flatten()
            .fold(0u64, |acc, v| acc.saturating_add(*v))
            .min(total)
    });
    let used = total.saturating_sub(available);
    let mut point = MetricPoint::new("mem", now)
        .field("total", int(total))
        .field("available", int(available))
        .field("used", int(used))
        .field("free", int(free))
        .field("used_percent", FieldValue::Float(percent(used, total)));
    if let Some(buffers) = info.buffers {
        point = point.field("buffers", int(buffers));
    }
    if let Some(cached) = info.cached {
        point = point.field("cached", int(cached));
    }
    out.push(point);
    Ok(())
}

pub(super) fn emit_swap(
    info: &MemInfo,
    path: &Path,
    now: SystemTime,
    out: &mut Vec<MetricPoint>,
) -> Result<(), HostMetricsError> {
    let total = info.swap_total.ok_or_else(|| missing(path, "no SwapTotal line"))?;
    let free = info.swap_free.ok_or_else(|| missing(path, "no SwapFree line"))?;
    let used = total.saturating_sub(free);
    out.push(
        MetricPoint::new("swap", now)
            .field("total", int(total))
            .field("used", int(used))
            .field("free", int(free))
            .field("used_percent", FieldValue::Float(percent(used, total))),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::host_metrics::fixtures::{approx, at, MEMINFO};

    #[test]
    fn parses_meminfo() {
        let info = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(info.mem_total, Some(16_303_412 * 1024));
        assert_eq!(info.mem_available, Some(9_876_544 * 1024));
        assert_eq!(info.swap_free, Some(1_048_572 * 1024));
        assert_eq!(parse_meminfo("MemTotal: lots kB\n").unwrap_err(), ParseError::at(0, "the value is not a number"));
        assert_eq!(parse_meminfo("MemFree: 1\nMemTotal: 1 MB\n").unwrap_err().line, 2);
        // Unknown keys with odd values do not matter.
        assert!(parse_meminfo("Weird: x y z\nno colon here\n").is_ok());
    }

    #[test]
    fn mem_and_swap_points() {
        let mut out = Vec::new();
        let path = Path::new("/proc/meminfo");
        let info = parse_meminfo(MEMINFO).unwrap();
        emit_mem(&info, path, at(0), &mut out).unwrap();
        emit_swap(&info, path, at(0), &mut out).unwrap();
        let mem = &out[0];
        let (total, available) = (16_303_412i64 * 1024, 9_876_544i64 * 1024);
        assert_eq!(mem.fields["total"], FieldValue::Int(total));
        assert_eq!(mem.fields["available"], FieldValue::Int(available));
        assert_eq!(mem.fields["used"], FieldValue::Int(total - available));
        assert_eq!(mem.fields["free"], FieldValue::Int(1_203_116 * 1024));
        assert_eq!(mem.fields["buffers"], FieldValue::Int(345_676 * 1024));
        assert_eq!(mem.fields["cached"], FieldValue::Int(7_654_320 * 1024));
        approx(mem.fields.get("used_percent"), (total - available) as f64 * 100.0 / total as f64);
        let swap = &out[1];
        assert_eq!(swap.fields["used"], FieldValue::Int(1_048_576 * 1024));
        approx(swap.fields.get("used_percent"), 1_048_576.0 * 100.0 / 2_097_148.0);

        // A pre-3.14 kernel or a container's emulated meminfo: no MemAvailable, no Buffers.
        let info =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 300 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
                .unwrap();
        out.clear();
        emit_mem(&info, path, at(0), &mut out).unwrap();
        emit_swap(&info, path, at(0), &mut out).unwrap();
        assert_eq!(out[0].fields["available"], FieldValue::Int(400 * 1024));
        assert_eq!(out[0].fields["used"], FieldValue::Int(600 * 1024));
        assert!(!out[0].fields.contains_key("buffers"));
        approx(out[1].fields.get("used_percent"), 0.0); // no swap at all

        let no_swap_lines = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\n").unwrap();
        assert!(emit_swap(&no_swap_lines, path, at(0), &mut out).is_err());
        assert!(emit_mem(&MemInfo::default(), path, at(0), &mut out).is_err());
    }
}
