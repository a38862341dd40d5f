#!/usr/bin/env bash
# Cluster benchmark: the cost of replication and the time to fail over (issue 4).
#   ./scripts/bench_cluster.sh [RECORDS] [RECORDS_1KIB]     # defaults 2000000 and RECORDS/4
# 1. starts a 3-broker cluster (release build, default configuration: 3 s broker session timeout)
#    on free loopback ports, data in a temporary directory on the disk bench.sh measures;
# 2. topics rf1 (RF=1) and rf3 (RF=3, min.insync.replicas=2), 6 partitions each; for 100-byte and
#    1 KiB records, `millrace bench --acks all --produce-only` against rf1 and rf3 (acks=all turns
#    on idempotence), reporting throughput and per-record delivery latency:
#    - unthrottled: RECORDS records of 100 B, RECORDS_1KIB of 1 KiB, REPEATS times (default 3),
#      alternating the topics;
#    - at a fixed offered rate both topics sustain: LAT_RATE_SMALL / LAT_RATE_LARGE records/s
#      (default 50000 / 10000) for LAT_SECONDS (default 10); the value `half` takes half the median
#      RF=3 unthrottled rate of that size measured just before (needs REPEATS ≥ 1);
#    - sparse writes, as an agent on a quiet server sends them: scripts/bench_sparse.py writes
#      SPARSE_RECORDS records (default 80; 0 skips) to rf1 and rf3, one at a time, each after a
#      random pause of up to 1.2 s, and reports their latency;
# 3. failover, FAILOVER_ROUNDS times (default 6): scripts/bench_failover.py writes acks=all,
#    idempotent, one record every 5 ms to the partition of a 3-partition RF=3 topic that its victim
#    leads, kill -9s the victim and times kill → first acknowledged write; odd rounds kill a leader
#    that is not the active controller, even rounds the active controller (leading a partition);
#    the killed broker is restarted and the ISR waited for between rounds. FAILOVER_ONLY=1 skips
#    step 2;
# BROKER_CONFIG=FILE starts every broker with that config file (e.g. to compare flush modes);
# LINGER_MS=N sets linger.ms for every run (default 5, librdkafka's default), so a maximum and the
# half of it are measured with the same client settings;
# MILLRACE_BIN=PATH uses that binary instead of building (e.g. to alternate two builds).
# After each fixed-rate run the brokers' Produce-time and log-fsync histograms are read from
# /metrics: the summary gives the broker's side of that run's latency.
# 4. a summary table, and the WARN/ERROR lines of the broker logs, grouped (KEEP_LOGS=DIR keeps the
#    logs and raw results there).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-2000000}
records_large=${2:-$((records / 4))}
lat_rate_small=${LAT_RATE_SMALL:-50000}
lat_rate_large=${LAT_RATE_LARGE:-10000}
lat_seconds=${LAT_SECONDS:-10}
rounds=${FAILOVER_ROUNDS:-6}
repeats=${REPEATS:-3}
partitions=6

./scripts/install-deps.sh
if [ -z "${MILLRACE_BIN:-}" ]; then cargo build --release --bin millrace -q; fi
bin=${MILLRACE_BIN:-./target/release/millrace}
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-cluster.XXXXXX")
declare -A pid

# Brokers are disowned (no job notices when one is killed on purpose), so they are waited for by
# polling their pid.
wait_exit() { for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; }
cleanup() {
  for n in 1 2 3; do
    if [ -n "${pid[$n]:-}" ]; then kill "${pid[$n]}" 2>/dev/null || true; fi
  done
  for n in 1 2 3; do
    if [ -n "${pid[$n]:-}" ]; then wait_exit "${pid[$n]}"; fi
  done
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.tsv "$work"/failover-* "$KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "## machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), cores: $(nproc), memory: $(free -g | awk '/Mem:/{print $2}') GiB"
echo "file system: $(df -h "$work" | awk 'NR==2{print $1, $2}')"
echo "millrace: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# Nine distinct free ports: Kafka, admin and controller listener of each broker.
read -r -a ports <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
kafka() { echo "127.0.0.1:${ports[$(($1 - 1))]}"; }
admin() { echo "127.0.0.1:${ports[$(($1 + 2))]}"; }
controller() { echo "127.0.0.1:${ports[$(($1 + 5))]}"; }
voters="1@$(controller 1),2@$(controller 2),3@$(controller 3)"
bootstrap="$(kafka 1),$(kafka 2),$(kafka 3)"

start_broker() { # NODE — appends to the node's log, so restarts keep the history
  local n=$1
  MILLRACE_LOG=info $bin broker ${BROKER_CONFIG:+--config "$BROKER_CONFIG"} --node-id "$n" --data-dir "$work/b$n" --listen "$(kafka "$n")" \
    --admin-listen "$(admin "$n")" --controller-listen "$(controller "$n")" --voters "$voters" \
    >>"$work/b$n.log" 2>&1 &
  pid[$n]=$!
  disown "${pid[$n]}"
}
registrations() { grep -c "broker registered" "$work/b$1.log" 2>/dev/null || true; }
wait_registered() { # NODE MIN_COUNT — waits (bounded) until the node logged its MIN_COUNTth registration
  for _ in $(seq 300); do
    [ "$(registrations "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "broker $1 did not register within 30 s; its log:" >&2
  tail -n 50 "$work/b$1.log" >&2
  return 1
}
wait_isr_full() { # BOOTSTRAP TOPIC — waits (bounded) until every partition's ISR has 3 members
  for _ in $(seq 600); do
    if $bin topic describe --bootstrap "$1" "$2" 2>/dev/null \
      | awk -F'\t' '/Partition:/{n++; for(i=1;i<=NF;i++) if($i ~ /^Isr: /){sub(/^Isr: /,"",$i); if(split($i,a,",")==3) ok++}} END{exit !(n>0 && n==ok)}'; then
      return 0
    fi
    sleep 0.1
  done
  echo "ISR of $2 not full within 60 s:" >&2
  $bin topic describe --bootstrap "$1" "$2" >&2 || true
  return 1
}

for n in 1 2 3; do start_broker "$n"; done
for n in 1 2 3; do
  wait_registered "$n" 1 || { for m in 1 2 3; do echo "--- b$m.log" >&2; tail -n 30 "$work/b$m.log" >&2; done; exit 1; }
done
echo "## cluster: brokers 1-3 on $(kafka 1) $(kafka 2) $(kafka 3), registered"

$bin topic create rf1 --bootstrap "$bootstrap" --partitions $partitions --replication-factor 1 >/dev/null
$bin topic create rf3 --bootstrap "$bootstrap" --partitions $partitions --replication-factor 3 \
  --topic-config min.insync.replicas=2 >/dev/null
$bin topic create failover --bootstrap "$bootstrap" --partitions 3 --replication-factor 3 \
  --topic-config min.insync.replicas=2 >/dev/null
wait_isr_full "$bootstrap" rf3
wait_isr_full "$bootstrap" failover

results="$work/results.tsv"
touch "$results"
[ "${FAILOVER_ONLY:-0}" = 1 ] || echo "## replication cost (acks=all, $partitions partitions)"
for size in 100 1024; do
  [ "${FAILOVER_ONLY:-0}" = 1 ] && break
  n=$records; rate=$lat_rate_small
  if [ "$size" = 1024 ]; then n=$records_large; rate=$lat_rate_large; fi
  # Alternating rf1 and rf3, REPEATS times, so drift in the machine's speed hits both alike.
  for _ in $(seq "$repeats"); do
    for topic in rf1 rf3; do
      $bin bench --bootstrap "$bootstrap" --topic "$topic" --records "$n" --record-size "$size" --acks all \
        --produce-only --linger-ms "${LINGER_MS:-5}" | sed "s/^/$topic\tunthrottled\t/" | tee -a "$results"
    done
  done
  if [ "$rate" = half ]; then
    rate=$(awk -F'\t' -v size="$size" '$1 == "rf3" && $2 == "unthrottled" && $3 == "produce" {
        for (i = 4; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        if (f["record_size"] == size) print f["records_per_sec"] }' "$results" | sort -n \
      | awk '{ r[++n] = $1 } END { if (!n) exit 1; m = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2; printf "%d", m / 2 }') \
      || { echo "a rate of 'half' needs REPEATS ≥ 1 (an unthrottled RF=3 run of $size B)" >&2; exit 1; }
    echo "fixed rate for $size B: $rate records/s, half the median unthrottled RF=3 rate above"
  fi
  for topic in rf1 rf3; do
    $bin bench --bootstrap "$bootstrap" --topic "$topic" --records $((rate * lat_seconds)) --record-size "$size" \
      --acks all --produce-only --rate "$rate" --linger-ms "${LINGER_MS:-5}" | sed "s/^/$topic\tfixed rate\t/" | tee -a "$results"
    for m in 1 2 3; do
      curl -s "http://$(admin "$m")/metrics" \
        | grep -E '^millrace_broker_(request_duration_seconds_bucket\{api="Produce"|log_flush_duration_seconds_bucket)' \
        | sed "s/^/$topic\t$size\t$m\t/" >>"$work/histograms.tsv" || true
    done
  done
done

if [ "${FAILOVER_ONLY:-0}" != 1 ] && [ "${SPARSE_RECORDS:-80}" -gt 0 ]; then
  for topic in rf1 rf3; do
    python3 scripts/bench_sparse.py --bootstrap "$bootstrap" --topic "$topic" --records "${SPARSE_RECORDS:-80}" \
      | sed "s/^/$topic\tsparse\t/" | tee -a "$results"
  done
fi

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## failover (3 partitions, RF=3, min.insync.replicas=2, acks=all, idempotent, one write per 5 ms)"
failovers="$work/failover.tsv"
touch "$failovers"
for round in $(seq "$rounds"); do
  wait_isr_full "$bootstrap" failover
  sleep 2 # let a preferred-leader election after the restart settle
  brokers="1=${pid[1]}=$(kafka 1),2=${pid[2]}=$(kafka 2),3=${pid[3]}=$(kafka 3)"
  victim=leader; [ $((round % 2)) = 0 ] && victim=controller
  if ! python3 scripts/bench_failover.py --bin "$bin" --brokers "$brokers" --topic failover --victim "$victim" \
    --logs "$work/b1.log,$work/b2.log,$work/b3.log" \
    >"$work/failover-$round.out" 2>"$work/failover-$round.err"; then
    cat "$work/failover-$round.out" "$work/failover-$round.err" >&2
    exit 1
  fi
  sed "s/^failover/failover\tround=$round/" "$work/failover-$round.out" | tee -a "$failovers"
  killed=$(sed -n 's/.*\tkilled=\([0-9]*\)\t.*/\1/p' "$work/failover-$round.out")
  wait_exit "${pid[$killed]}"
  before=$(registrations "$killed")
  start_broker "$killed"
  wait_registered "$killed" $((before + 1))
  wait_isr_full "$bootstrap" failover
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## summary"
python3 - "$results" "$failovers" "$work/histograms.tsv" <<'PY'
import statistics, sys

def fields(line):
    cols = line.rstrip("\n").split("\t")
    return cols, dict(c.split("=", 1) for c in cols if "=" in c)

runs = {}  # (size, load, topic) → list of (records/s, p50, p99, max); the two lines of a run are adjacent
pending = {}
for line in open(sys.argv[1]):
    cols, f = fields(line)
    key = (int(f["record_size"]), cols[1], cols[0])
    if cols[2] == "produce":
        pending[key] = float(f["records_per_sec"])
    elif cols[2] == "produce_latency":
        # Sparse writes have no rate line: their rate is whatever the pauses leave.
        rate = pending.pop(key, 0.0)
        runs.setdefault(key, []).append((rate, float(f["p50_ms"]), float(f["p99_ms"]), float(f["max_ms"])))

med = statistics.median
print("size    load         RF  runs  records/s (median, range)       MB/s   p50 ms   p99 ms   max ms")
for size in (100, 1024):
    for load in ("unthrottled", "fixed rate", "sparse"):
        row = {}
        for topic in ("rf1", "rf3"):
            r = runs.get((size, load, topic))
            if not r:
                continue
            rps = [x[0] for x in r]
            row[topic] = med(rps)
            spread = f"{min(rps):,.0f}–{max(rps):,.0f}" if len(r) > 1 else ""
            rate = f"{med(rps):>10,.0f} {spread:<21} {med(rps) * size / 1e6:6.1f}" if load != "sparse" else f"{'one at a time':<39}"
            print(f"{size:<7} {load:<12} {topic[2]:>2} {len(r):>5}  {rate}"
                  f" {med([x[1] for x in r]):8.2f} {med([x[2] for x in r]):8.2f} {max(x[3] for x in r):8.2f}")
        if load == "unthrottled" and row.get("rf1"):
            print(f"{size:<7} RF=3 / RF=1 throughput (medians): {100 * row.get('rf3', 0) / row['rf1']:.0f} %")
print("(latency: per record, enqueue → delivery report; p50/p99 are medians over the runs, max the largest)")
# The brokers' side of each fixed-rate run: cumulative histograms read after every run, so a
# run's share is the difference from the previous reading of the same broker.
try:
    lines = open(sys.argv[3]).read().splitlines()
except OSError:
    lines = []
readings = {}  # (topic, size, broker, metric) → {le: count}
for line in lines:
    topic, size, broker, sample = line.split("\t")
    name, value = sample.rsplit(" ", 1)
    metric = "produce" if "request_duration" in name else "fsync"
    le = name.split('le="')[1].split('"')[0]
    readings.setdefault((topic, int(size), broker, metric), {})[le] = float(value)
previous, runs_by = {}, {}
for (topic, size, broker, metric), counts in readings.items():
    before = previous.get((broker, metric), {})
    previous[(broker, metric)] = counts
    total = runs_by.setdefault((topic, size, metric), {})
    for le, n in counts.items():
        total[le] = total.get(le, 0) + n - before.get(le, 0)
if runs_by:
    print("broker side of the fixed-rate runs (all brokers): share of Produce requests answered within 1 / 5 ms,")
    print("and of log fsyncs taking over 5 ms")
    for size in (100, 1024):
        for topic in ("rf1", "rf3"):
            produce, fsync = runs_by.get((topic, size, "produce")), runs_by.get((topic, size, "fsync"))
            if not produce or not fsync or not produce.get("+Inf") or not fsync.get("+Inf"):
                continue
            print(f"{size:<7} {topic}: Produce ≤ 1 ms {produce['0.001'] / produce['+Inf']:6.1%}, ≤ 5 ms "
                  f"{produce['0.005'] / produce['+Inf']:6.1%} ({produce['+Inf']:.0f} requests); fsyncs > 5 ms "
                  f"{1 - fsync['0.005'] / fsync['+Inf']:5.1%} of {fsync['+Inf']:.0f}")
print()
firsts, by_kind = [], {}
for line in open(sys.argv[2]):
    _, f = fields(line)
    firsts.append(float(f["first_ack_ms"]))
    kind = "the active controller" if f["killed"] == f["controller"] else "a leader, not the controller"
    by_kind.setdefault(kind, []).append(float(f["first_ack_ms"]))
    print(f"round {f['round']}: killed leader {f['killed']} of partition {f['partition']} (active controller {f['controller']}); ms after the kill: "
          f"last ack {f['last_ack_before_ms'].lstrip('-')} before, fenced {f['fenced_ms']}, new leader {f['new_leader']} "
          f"elected {f['elected_ms']}, in metadata {f['new_leader_ms']}, first acks=all write {f['first_ack_ms']} "
          f"(delivery errors {f['errors']})")
if firsts:
    print(f"failover, kill -9 of the leader → first acks=all write: min {min(firsts):.0f} ms, "
          f"median {med(firsts):.0f} ms, max {max(firsts):.0f} ms ({len(firsts)} rounds)")
for kind, values in sorted(by_kind.items()):
    print(f"  killing {kind}: min {min(values):.0f} ms, median {med(values):.0f} ms, max {max(values):.0f} ms "
          f"({len(values)} rounds)")
PY

echo "## broker log WARN/ERROR lines (timestamps and numbers folded, most frequent first)"
for n in 1 2 3; do
  echo "-- broker $n: $(grep -c -E ' (WARN|ERROR) ' "$work/b$n.log" || true) lines"
  grep -E ' (WARN|ERROR) ' "$work/b$n.log" | cut -d' ' -f2- | sed -E 's/[0-9]+/N/g' | cut -c1-200 \
    | sort | uniq -c | sort -rn | head -n 8 || true
done
