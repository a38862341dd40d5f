#!/usr/bin/env bash
# Builds millrace and runs a single broker with defaults: Kafka protocol on 127.0.0.1:9092,
# admin HTTP (/metrics, /health) on 127.0.0.1:9644, data in ./millrace-data.
# Extra arguments go to `millrace broker`, e.g. `./scripts/run.sh --data-dir /var/lib/millrace`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --bin millrace
exec ./target/release/millrace broker "$@"
