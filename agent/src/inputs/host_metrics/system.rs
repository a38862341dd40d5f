//! The `system` collector: load averages (`/proc/loadavg`), uptime (`/proc/uptime`) and the
//! number of CPUs (counted in `/proc/stat`).

use super::counters::int;
use super::proc_file::{read_file, text, HostMetricsError, ParseError};
use super::HostMetricsSampler;
use crate::event::{FieldValue, MetricPoint};
use std::time::SystemTime;

fn non_negative(column: Option<&str>) -> Option<f64> {
    column?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Parses `/proc/loadavg` (`0.52 0.58 0.59 2/1234 56789`) into the 1, 5 and 15 minute averages.
pub(crate) fn parse_loadavg(text: &str) -> Result<[f64; 3], ParseError> {
    let mut columns = text.split_ascii_whitespace();
    let mut load = [0.0; 3];
    for slot in &mut load {
        *slot = non_negative(columns.next()).ok_or(ParseError::at(0, "a load average is not a number"))?;
    }
    Ok(load)
}

/// Parses `/proc/uptime` (`12345.67 23456.78`) into whole seconds since boot.
pub(crate) fn parse_uptime(text: &str) -> Result<u64, ParseError> {
    let secs =
        non_negative(text.split_ascii_whitespace().next()).ok_or(ParseError::at(0, "the uptime is not a number"))?;
    Ok(secs as u64)
}

impl HostMetricsSampler {
    pub(super) fn collect_system(
        &mut self,
        n_cpus: usize,
        now: SystemTime,
        out: &mut Vec<MetricPoint>,
    ) -> Result<(), HostMetricsError> {
        read_file(&self.paths.loadavg, &mut self.buf)?;
        let [load1, load5, load15] = parse_loadavg(&text(&self.buf))
            .map_err(|source| HostMetricsError::Parse { path: self.paths.loadavg.clone(), source })?;
        read_file(&self.paths.uptime, &mut self.buf)?;
        let uptime = parse_uptime(&text(&self.buf))
            .map_err(|source| HostMetricsError::Parse { path: self.paths.uptime.clone(), source })?;
        out.push(
            MetricPoint::new("system", now)
                .field("load1", FieldValue::Float(load1))
                .field("load5", FieldValue::Float(load5))
                .field("load15", FieldValue::Float(load15))
                .field("uptime_s", int(uptime))
                .field("n_cpus", int(n_cpus as u64)),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadavg_and_uptime() {
        assert_eq!(parse_loadavg("0.52 1.58 12.59 2/1234 56789\n").unwrap(), [0.52, 1.58, 12.59]);
        assert!(parse_loadavg("0.52 1.58\n").is_err());
        assert!(parse_loadavg("0.52 nan 1\n").is_err());
        assert_eq!(parse_uptime("350735.47 234388.90\n").unwrap(), 350_735);
        assert!(parse_uptime("-1 0\n").is_err());
        assert!(parse_uptime("").is_err());
    }
}
