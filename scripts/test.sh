#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite: formatting, lints, unit tests and the
# integration tests that start real broker processes and drive kcat, confluent-kafka and
# kafka-python against them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --tests
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! cargo test --workspace --no-fail-fast 2>&1 | tee "$out"; then
    # A failing integration test prints its brokers' logs before its own message; repeat the
    # messages last, where a reader of the end of a long log finds them.
    echo
    echo "=== why each failing test failed ==="
    grep -E -A6 "^---- .* stdout ----$|^Error: |panicked at" "$out" | grep -vE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T" | head -150 || true
    exit 1
fi
