//! An exposition text and helpers shared by the parser and the scraper tests.

use std::collections::BTreeMap;

pub(super) const NODE_EXPORTER: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 2.58225604e+06
node_cpu_seconds_total{cpu="0",mode="user"} 49087.43
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.21

# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4.2098450432E10
# HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, 0 otherwise
# TYPE node_textfile_scrape_error gauge
node_textfile_scrape_error{file="C:\\metrics\\backup.prom",error="cannot read \"backup.prom\":\nno such file"} 1
# HELP http_request_duration_seconds Request latency.\nBuckets in seconds; a \\ backslash and "quotes" {braces}.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/api",le="0.05"} 24054
http_request_duration_seconds_bucket{handler="/api",le="0.1"} 33444
http_request_duration_seconds_bucket{handler="/api",le="+Inf"} 144320
http_request_duration_seconds_sum{handler="/api"} 53423
http_request_duration_seconds_count{handler="/api"} 144320
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 1.9e-05
go_gc_duration_seconds{quantile="0.5"} 3.5e-05
go_gc_duration_seconds{quantile="1"} NaN
go_gc_duration_seconds_sum 0.173
go_gc_duration_seconds_count 4217
# A comment that is neither HELP nor TYPE.
#
node_scrape_collector_success{collector="cpu"} 1
node_time_seconds +Inf 1795431600123
node_boot_time_delta -Inf -1000
"#;

pub(super) fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
