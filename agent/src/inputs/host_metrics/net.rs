//! The `net` collector: `/proc/net/dev` counters per interface, and their rates.

use super::counters::{elapsed_secs, int, per_sec, CounterHistory};
use super::proc_file::{read_file, text, HostMetricsError, ParseError};
use super::HostMetricsSampler;
use crate::event::{FieldValue, MetricPoint};
use std::collections::HashMap;
use std::time::SystemTime;

/// The `/proc/net/dev` counters used, for one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetDev<'a> {
    pub(crate) name: &'a str,
    pub(crate) bytes_recv: u64,
    pub(crate) packets_recv: u64,
    pub(crate) err_in: u64,
    pub(crate) drop_in: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) packets_sent: u64,
    pub(crate) err_out: u64,
    pub(crate) drop_out: u64,
}

/// Parses `/proc/net/dev`: two header lines, then `name: 8 receive and 8 transmit counters`.
pub(crate) fn parse_net_dev(text: &str) -> Result<Vec<NetDev<'_>>, ParseError> {
    let mut interfaces = Vec::new();
    for (index, line) in text.lines().enumerate() {
        // Interface names cannot contain ':' but a wide counter can follow it without a space
        // (`eth0:1234567890`), so split at the colon rather than at whitespace.
        let Some((name, counters)) = line.rsplit_once(':') else {
            if line.contains('|') || line.trim().is_empty() {
                continue; // header
            }
            return Err(ParseError::at(index, "no ':' after the interface name"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError::at(index, "an empty interface name"));
        }
        let mut v = [0u64; 16];
        let mut found = 0;
        for (slot, column) in v.iter_mut().zip(counters.split_ascii_whitespace()) {
            *slot = column.parse().map_err(|_| ParseError::at(index, "an interface counter is not a number"))?;
            found += 1;
        }
        if found < v.len() {
            return Err(ParseError::at(index, "an interface line has fewer than 16 counters"));
        }
        // Receive: bytes packets errs drop fifo frame compressed multicast;
        // transmit: bytes packets errs drop fifo colls carrier compressed.
        interfaces.push(NetDev {
            name,
            bytes_recv: v[0],
            packets_recv: v[1],
            err_in: v[2],
            drop_in: v[3],
            bytes_sent: v[8],
            packets_sent: v[9],
            err_out: v[10],
            drop_out: v[11],
        });
    }
    Ok(interfaces)
}

impl HostMetricsSampler {
    pub(super) fn collect_net(&mut self, now: SystemTime, out: &mut Vec<MetricPoint>) -> Result<(), HostMetricsError> {
        read_file(&self.paths.net_dev, &mut self.buf)?;
        let text = text(&self.buf);
        let interfaces = parse_net_dev(&text)
            .map_err(|source| HostMetricsError::Parse { path: self.paths.net_dev.clone(), source })?;
        let secs = elapsed_secs(self.net_history.at, now);
        let mut seen = HashMap::with_capacity(self.net_history.values.len());
        for dev in interfaces {
            if dev.name == "lo" {
                continue;
            }
            let mut point = MetricPoint::new("net", now)
                .tag("interface", dev.name)
                .field("bytes_recv", int(dev.bytes_recv))
                .field("bytes_sent", int(dev.bytes_sent))
                .field("packets_recv", int(dev.packets_recv))
                .field("packets_sent", int(dev.packets_sent))
                .field("err_in", int(dev.err_in))
                .field("err_out", int(dev.err_out))
                .field("drop_in", int(dev.drop_in))
                .field("drop_out", int(dev.drop_out));
            let (key, prev) = self.net_history.take(dev.name);
            if let (Some(secs), Some([prev_recv, prev_sent])) = (secs, prev) {
                if let Some(rate) = per_sec(dev.bytes_recv, prev_recv, secs) {
                    point = point.field("bytes_recv_per_sec", FieldValue::Float(rate));
                }
                if let Some(rate) = per_sec(dev.bytes_sent, prev_sent, secs) {
                    point = point.field("bytes_sent_per_sec", FieldValue::Float(rate));
                }
            }
            seen.insert(key, [dev.bytes_recv, dev.bytes_sent]);
            out.push(point);
        }
        self.net_history = CounterHistory { at: Some(now), values: seen };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::host_metrics::fixtures::NET_DEV;

    #[test]
    fn parses_net_dev() {
        let interfaces = parse_net_dev(NET_DEV).unwrap();
        assert_eq!(interfaces.iter().map(|i| i.name).collect::<Vec<_>>(), ["lo", "eth0", "docker0"]);
        assert_eq!(
            interfaces[1],
            NetDev {
                name: "eth0",
                bytes_recv: 1_234_567_890,
                packets_recv: 1_000_000,
                err_in: 1,
                drop_in: 2,
                bytes_sent: 987_654_321,
                packets_sent: 800_000,
                err_out: 3,
                drop_out: 4,
            }
        );
        assert_eq!(parse_net_dev("eth0: 1 2 3\n").unwrap_err().reason, "an interface line has fewer than 16 counters");
        assert_eq!(parse_net_dev("h|h\nh|h\neth0 1 2\n").unwrap_err().line, 3);
        assert_eq!(
            parse_net_dev(":1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n").unwrap_err().reason,
            "an empty interface name"
        );
    }
}
