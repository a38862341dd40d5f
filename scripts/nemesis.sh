#!/usr/bin/env bash
# Runs the nemesis (tests/tests/nemesis.rs, issue 16): a 3-broker cluster under a seeded random
# schedule of overlapping faults, with a Jepsen-style workload and an agent -> sink pipeline.
#
#   scripts/nemesis.sh [FAULTS] [DURATION_SECONDS] [SEED]
#
# FAULTS (default 50) and DURATION_SECONDS (default 0): inject at least that many faults and for
# at least that long. SEED defaults to one derived from the clock; the run prints it, and the
# same seed replays the same choices. Needs root (network namespaces).
#
# The test binary and the millrace binary are built first and copied into a snapshot directory,
# so that a rebuild in the shared target directory during a long run cannot change the brokers
# restarted half-way. Ends with the one-line summary (`nemesis: seed=… faults=…`); exits non-zero
# on any anomaly, with the evidence and the kept work directory printed.
#
# MILLRACE_NEMESIS_PREBUILT=1 skips both builds and takes target/debug/millrace and the newest
# nemesis test binary as they are (e.g. while the tree does not compile).
set -euo pipefail
cd "$(dirname "$0")/.."

faults=${1:-50}
duration=${2:-0}
seed=${3:-}

target=${CARGO_TARGET_DIR:-target}
if [ "${MILLRACE_NEMESIS_PREBUILT:-0}" = 1 ]; then
    test_bin=$(ls -t "$target"/debug/deps/nemesis-* | grep -v '\.d$' | head -n 1)
else
    cargo build -q -p millrace --bin millrace
    test_bin=$(cargo test -q -p millrace-tests --test nemesis --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "nemesis" and m.get("executable"):
        print(m["executable"])')
fi
[ -n "$test_bin" ] || { echo "could not find the nemesis test binary" >&2; exit 2; }

snapshot=$(mktemp -d /tmp/millrace-nemesis-bin.XXXXXX)
trap 'rm -rf "$snapshot"' EXIT
mkdir -p "$snapshot/debug"
cp "$target/debug/millrace" "$snapshot/debug/millrace"
cp "$test_bin" "$snapshot/nemesis-test"
# The harness runs `$CARGO build` for the millrace binary and takes it from
# $CARGO_TARGET_DIR/debug: point both at the snapshot.
printf '#!/bin/sh\nexit 0\n' >"$snapshot/cargo"
chmod +x "$snapshot/cargo"

echo "nemesis: faults>=$faults duration>=${duration}s seed=${seed:-clock} binary $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- broker src agent sinks || echo '+uncommitted')"
# The pipeline's liveness (every line delivered by the sink, clean stops) fails the run too;
# MILLRACE_NEMESIS_LIVENESS=relaxed reports it only.
MILLRACE_NEMESIS_FAULTS=$faults MILLRACE_NEMESIS_DURATION=$duration MILLRACE_NEMESIS_SEED=$seed \
    MILLRACE_NEMESIS_LIVENESS=${MILLRACE_NEMESIS_LIVENESS:-strict} \
    CARGO="$snapshot/cargo" CARGO_TARGET_DIR="$snapshot" MILLRACE_REQUIRE_NETNS=1 \
    "$snapshot/nemesis-test" --nocapture --test-threads=1
