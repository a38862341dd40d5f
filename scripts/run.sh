#!/usr/bin/env bash
# Builds millrace and runs `millrace demo`: a 3-broker cluster on free loopback ports, an agent
# tailing a generated nginx access log and sampling this machine's metrics, and sinks writing
# Elasticsearch-bulk and InfluxDB line-protocol files; then `millrace top` (on a terminal) or a
# status line every few seconds. Ctrl-C stops everything.
# Extra arguments go to `millrace demo`, e.g. `./scripts/run.sh --no-top --duration 60`,
# `./scripts/run.sh --dir /tmp/millrace-demo` (kept afterwards) or
# `./scripts/run.sh --elasticsearch http://127.0.0.1:9200 --influxdb http://127.0.0.1:8086`.
# A single broker with defaults: `./target/release/millrace broker`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --bin millrace
exec ./target/release/millrace demo "$@"
