#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: formatting, lints, unit tests and the
# integration tests that start real broker processes and drive kcat, confluent-kafka and
# kafka-python against them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --tests
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
