#!/usr/bin/env bash
# Two broker builds side by side: is a change faster or slower at produce, with the client fixed?
#   A_BIN=PATH B_BIN=PATH ./scripts/bench_ab.sh [ROUNDS]      # default 8 rounds
# Starts one single-node broker of each build (default configuration, fsync before an acks=all
# answer) on free loopback ports, data directories side by side on the same file system, then
# alternates produce-only runs of `millrace bench` (the client of CLIENT_BIN, default A_BIN) against
# the two, ROUNDS times, in the order A B, B A, A B, … so drift hits both alike: 100 B and 1 KiB
# records, acks=all (idempotent), each run into a fresh 4-partition topic. Prints each run and the
# median records/s per build and size, with the median of the per-round B ÷ A ratios.
# Env: RECORDS (100 B records per run, default 2000000), RECORDS_1KIB (default RECORDS / 4),
# BENCH_DIR (where the data directories go, default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8}
: "${A_BIN:?set A_BIN to the first build}" "${B_BIN:?set B_BIN to the second build}"
client=${CLIENT_BIN:-$A_BIN}
records=${RECORDS:-2000000}
records_large=${RECORDS_1KIB:-$((records / 4))}
mkdir -p "${BENCH_DIR:-$PWD/target}"
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-ab.XXXXXX")
declare -A pid port
cleanup() {
  for b in A B; do [ -n "${pid[$b]:-}" ] && kill "${pid[$b]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for b in A B; do
  bin=A_BIN; [ "$b" = B ] && bin=B_BIN
  port[$b]=$(free_port)
  MILLRACE_LOG=warn "${!bin}" broker --data-dir "$work/$b" --listen "127.0.0.1:${port[$b]}" \
    --admin-listen "127.0.0.1:$(free_port)" >"$work/$b.log" 2>&1 &
  pid[$b]=$!
done
for b in A B; do
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/${port[$b]}") 2>/dev/null && break; sleep 0.05; done
done
echo "## machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## A: $A_BIN; B: $B_BIN; client: $client; $rounds rounds"
n=0
for round in $(seq "$rounds"); do
  order="A B"; [ $((round % 2)) = 0 ] && order="B A"
  for size in 100 1024; do
    count=$records; [ "$size" = 1024 ] && count=$records_large
    for b in $order; do
      n=$((n + 1))
      "$client" topic create "ab$n" --partitions 4 --bootstrap "127.0.0.1:${port[$b]}" >/dev/null
      "$client" bench --bootstrap "127.0.0.1:${port[$b]}" --topic "ab$n" --records "$count" --record-size "$size" \
        --acks all --produce-only | awk -F'\t' '$1 == "produce"' | sed "s/^/$round\t$b\t/" | tee -a "$work/results"
    done
  done
done
python3 - "$work/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cols = line.rstrip("\n").split("\t")
    f = dict(c.split("=", 1) for c in cols if "=" in c)
    rows.setdefault((int(f["record_size"]), cols[1]), {})[int(cols[0])] = float(f["records_per_sec"])
med = statistics.median
print("## summary: records/s, median (range) over rounds")
for size in (100, 1024):
    a, b = rows.get((size, "A"), {}), rows.get((size, "B"), {})
    ratios = [b[r] / a[r] for r in a if r in b]
    if not ratios:
        continue
    print(f"{size:>5} B acks=all  A {med(a.values()):>11,.0f} ({min(a.values()):,.0f}–{max(a.values()):,.0f})"
          f"  B {med(b.values()):>11,.0f} ({min(b.values()):,.0f}–{max(b.values()):,.0f})"
          f"  B ÷ A per round: median {med(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")
EOF
