#!/usr/bin/env bash
# Two broker builds side by side, alternating rounds, the same librdkafka client for both:
#   ./scripts/bench_compare.sh BEFORE_BIN AFTER_BIN [ROUNDS] [RECORDS] [COMPRESSION]
# Each round starts each broker on a fresh data directory, creates a 4-partition topic and runs
# `millrace bench --produce-only` (100 B records, acks=all with idempotence) with AFTER_BIN's
# client; prints records/s and the broker's peak RSS per round.
set -euo pipefail
before=$1; after=$2; rounds=${3:-5}; records=${4:-1000000}; compression=${5:-none}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-compare.XXXXXX")
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for round in $(seq 1 "$rounds"); do
  for which in before after; do
    bin=$before; [ "$which" = after ] && bin=$after
    rm -rf "$work/data"; port=$(free_port); admin=$(free_port)
    MILLRACE_LOG=warn "$bin" broker --data-dir "$work/data" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    # Brokers before 70e0c53 could leave a CreateTopics sent right after start unanswered: retry.
    for attempt in 1 2 3; do
      "$after" topic create bench --partitions 4 --bootstrap "127.0.0.1:$port" >/dev/null 2>&1 && break
      [ "$attempt" = 3 ] && { echo "creating the topic failed" >&2; exit 1; }
    done
    rate=$("$after" bench --bootstrap "127.0.0.1:$port" --topic bench --records "$records" --record-size 100 \
      --acks all --compression "$compression" --produce-only 2>&1 | grep -o 'records_per_sec=[0-9]*' | head -1)
    echo "round $round $which compression=$compression $rate peak_rss_kb=$(awk '/VmHWM/{print $2}' /proc/$pid/status)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
