#!/usr/bin/env bash
# Sink benchmark (issue 6): broker → InfluxDB through `millrace sink` against writing the same
# line-protocol batches straight to InfluxDB, and broker → the Elasticsearch test server.
#   ./scripts/bench_sinks.sh [POINTS] [LOG_RECORDS]     # defaults 400000 and 200000 (0: no Elasticsearch run)
# 1. installs the test dependencies (InfluxDB 1.x from Debian), builds the release binary;
# 2. starts a release broker, a private influxd and the Elasticsearch test server
#    (tests/python/es_test_server.py) on free loopback ports, all data in a temporary directory;
# 3. generates POINTS metric records in the agent's format (400 series, one point per series per
#    second) and the identical line protocol (scripts/bench_sinks.py), produces the records to a
#    4-partition topic keyed by host name, as the agent keys metrics (so each series stays in
#    order on one partition);
# 4. direct: the line protocol written to database `direct` in batches of BATCH (default 5000)
#    lines over IN_FLIGHT (default 2) keep-alive connections, one request at a time on each;
#    timed by the writer;
# 5. sink: `millrace sink` with one InfluxDB sink (batch_max_events = BATCH,
#    max_in_flight = IN_FLIGHT, no gzip) from a fresh
#    group into database `sink`; timed from its "partitions assigned" log line (the group join,
#    held 3 s by the broker for a new group, is left out) until its records_forwarded_total
#    reaches POINTS (polled every 10 ms over one connection: bench_sinks.py watch); its CPU and minor page faults (/proc/PID/stat) and peak
#    RSS (VmHWM) then; both databases must then hold POINTS points;
# 6. steps 4 and 5 again, REPEATS times in all (default 4), odd rounds direct first, even rounds
#    the sink first; each run starts once influxd is quiet (its compactions after the last run
#    done);
# With PIN=1, influxd (and the Elasticsearch test server) run on CPU 1 and everything else (broker,
# sink, direct writer) on CPU 0 (taskset): InfluxDB has the same one core in both runs, as when the
# sink runs on a host of its own, and the ratio measures the sink rather than the two sides taking
# CPU from each other on a shared machine.
# 7. Elasticsearch: LOG_RECORDS log records through a sink into the test server (same timing);
#    documents/s, CPU and RSS. The test server is a single Python process, so this measures the
#    sink against that server, not against Elasticsearch.
set -euo pipefail
cd "$(dirname "$0")/.."
points=${1:-400000}
log_records=${2:-200000}
batch=${BATCH:-5000}
in_flight=${IN_FLIGHT:-2}
repeats=${REPEATS:-4}
server_cpu=() client_cpu=()
if [ "${PIN:-0}" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs two CPUs" >&2; exit 1; }
  server_cpu=(taskset -c 1) client_cpu=(taskset -c 0)
fi

./scripts/install-deps.sh --tests >/dev/null
# MILLRACE_BIN=PATH measures that binary instead (e.g. a build from before a change).
if [ -n "${MILLRACE_BIN:-}" ]; then bin=$MILLRACE_BIN; else
  cargo build --release --bin millrace -q
  bin=$PWD/target/release/millrace
fi
py=$PWD/scripts/bench_sinks.py
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-sinks.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.toml "$KEEP_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_ports() { python3 -c "
import socket
socks = [socket.socket() for _ in range($1)]
for s in socks: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))"; }
read -r kafka admin influx_http influx_rpc es_port metrics_port <<<"$(free_ports 6)"
bootstrap=127.0.0.1:$kafka
clk_tck=$(getconf CLK_TCK)
cpu_seconds() { sed 's/^.*) //' "/proc/$1/stat" | awk -v h="$clk_tck" '{printf "%.2f", ($12 + $13) / h}'; }
# Minor page faults (memory touched for the first time since it was mapped): each costs kernel time.
minor_faults() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $8}'; }
status_mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu_delta() { awk -v a="$2" -v b="$(cpu_seconds "$1")" 'BEGIN{printf "%.2f", b - a}'; }

echo "## machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), cores: $(nproc), memory: $(free -g | awk '/Mem:/{print $2}') GiB"
echo "millrace: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
echo "influxdb: $(influxd version 2>/dev/null | head -1)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pinned: ${PIN:-0}$([ "${PIN:-0}" = 1 ] && echo ' (influxd and the Elasticsearch test server on CPU 1; broker, sink and direct writer on CPU 0)')"

"${client_cpu[@]}" "$bin" broker --data-dir "$work/broker" --listen "$bootstrap" --admin-listen "127.0.0.1:$admin" >"$work/broker.log" 2>&1 &
broker_pid=$!
pids+=($broker_pid)
cat >"$work/influxdb.conf" <<CONF
reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:$influx_rpc"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
[http]
  bind-address = "127.0.0.1:$influx_http"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
"${server_cpu[@]}" influxd -config "$work/influxdb.conf" >"$work/influxd.log" 2>&1 &
influxd_pid=$!
pids+=($influxd_pid)
"${server_cpu[@]}" python3 tests/python/es_test_server.py --port "$es_port" >"$work/es.log" 2>&1 &
pids+=($!)
influx=http://127.0.0.1:$influx_http
for _ in $(seq 300); do
  grep -q "broker ready" "$work/broker.log" && curl -sf "$influx/ping" >/dev/null && curl -sf "http://127.0.0.1:$es_port/" >/dev/null && break
  sleep 0.1
done
curl -sf "$influx/ping" >/dev/null || { echo "influxd did not start:" >&2; tail "$work/influxd.log" >&2; exit 1; }
query() { curl -sf -XPOST "$influx/query" --data-urlencode "db=$1" --data-urlencode "q=$2"; }
count_points() { query "$1" "SELECT count(usage_user) FROM cpu" | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["series"][0]["values"][0][1] if "series" in r else 0)'; }

echo "## input: $points metric points, $log_records log records; batches of $batch, $in_flight in flight"
python3 "$py" generate "$points" "$work/points.json" "$work/points.lp"
python3 "$py" logs "$log_records" "$work/logs.json"
"$bin" topic create bench-metrics --partitions 4 --bootstrap "$bootstrap" >/dev/null
"$bin" topic create bench-logs --partitions 4 --bootstrap "$bootstrap" >/dev/null
kcat -P -K '\t' -b "$bootstrap" -t bench-metrics -z lz4 <"$work/points.json"
kcat -P -K '\t' -b "$bootstrap" -t bench-logs -z lz4 <"$work/logs.json"


run_sink() { # NAME KIND TARGET COUNT — prints "seconds cpu_s peak_rss_mib"
  local name=$1 kind=$2 target=$3 count=$4 sink_pid
  {
    printf '[sink]\nmetrics_listen = "127.0.0.1:%s"\n[source]\nbootstrap = "%s"\n' "$metrics_port" "$bootstrap"
    case $kind in
      influxdb) printf '[[influxdb]]\ntopics = ["bench-metrics"]\nurl = "%s"\ndatabase = "%s"\n' "$influx" "$target" ;;
      elasticsearch) printf '[[elasticsearch]]\ntopics = ["bench-logs"]\nendpoints = ["http://127.0.0.1:%s"]\nindex = "%s"\n' "$es_port" "$target" ;;
    esac
    printf 'name = "%s"\ngroup = "%s"\nbatch_max_events = %s\nbatch_max_bytes = "16MiB"\nmax_in_flight = %s\n' "$name" "$name" "$batch" "$in_flight"
  } >"$work/$name.toml"
  MILLRACE_LOG=${SINK_LOG:-info} "${client_cpu[@]}" ${SINK_WRAPPER:-} "$bin" sink --config "$work/$name.toml" >"$work/$name.log" 2>&1 &
  sink_pid=$!
  # The clock starts once the group gave the sink its partitions: joining (the broker holds a new
  # group's first join for group.initial.rebalance.delay, 3 s) is not the sink's throughput.
  local influx_cpu0 broker_cpu0 secs
  influx_cpu0=$(cpu_seconds "$influxd_pid")
  broker_cpu0=$(cpu_seconds "$broker_pid")
  secs=$(python3 "$py" watch "$work/$name.log" "http://127.0.0.1:$metrics_port/metrics" "$name" "$count" "$sink_pid") \
    || { echo "the sink exited; log:" >&2; tail "$work/$name.log" >&2; exit 1; }
  echo "$secs $(cpu_seconds "$sink_pid") $(status_mib "$sink_pid" VmHWM) $(cpu_delta "$influxd_pid" "$influx_cpu0") $(cpu_delta "$broker_pid" "$broker_cpu0") $(minor_faults "$sink_pid")"
  kill "$sink_pid"
  wait "$sink_pid" 2>/dev/null || true
}

# After a write run InfluxDB snapshots its cache and compacts for a while; whichever run came
# next would share the CPU with that. Each run starts once influxd has used under 5% of a core
# for a whole second (at most 60 s).
wait_influx_quiet() {
  local before after waited=0
  before=$(cpu_seconds "$influxd_pid")
  while [ "$waited" -lt 60 ]; do
    sleep 1
    waited=$((waited + 1))
    after=$(cpu_seconds "$influxd_pid")
    if awk -v a="$before" -v b="$after" 'BEGIN{exit !(b - a < 0.05)}'; then break; fi
    before=$after
  done
  quiet_waits+=("$waited")
}
quiet_waits=()

results=()
for r in $(seq "$repeats"); do
  query "direct$r" "CREATE DATABASE direct$r" >/dev/null
  query "sink$r" "CREATE DATABASE sink$r" >/dev/null
  # Alternating which goes first, so neither always meets a warmer (or busier) InfluxDB.
  if [ $((r % 2)) = 0 ]; then
    wait_influx_quiet
    read -r sink_secs sink_cpu sink_rss sink_influx_cpu sink_broker_cpu sink_faults <<<"$(run_sink "influx$r" influxdb "sink$r" "$points")"
  fi
  wait_influx_quiet
  direct_influx_cpu0=$(cpu_seconds "$influxd_pid")
  read -r n secs <<<"$("${client_cpu[@]}" python3 "$py" direct "$influx" "direct$r" "$work/points.lp" "$batch" "$in_flight")"
  direct_influx_cpu=$(cpu_delta "$influxd_pid" "$direct_influx_cpu0")
  direct_rate=$(awk -v n="$n" -v s="$secs" 'BEGIN{printf "%.0f", n / s}')
  if [ $((r % 2)) = 1 ]; then
    wait_influx_quiet
    read -r sink_secs sink_cpu sink_rss sink_influx_cpu sink_broker_cpu sink_faults <<<"$(run_sink "influx$r" influxdb "sink$r" "$points")"
  fi
  sink_rate=$(awk -v n="$points" -v s="$sink_secs" 'BEGIN{printf "%.0f", n / s}')
  stored_direct=$(count_points "direct$r")
  stored_sink=$(count_points "sink$r")
  echo "round $r: direct $direct_rate points/s ($secs s, influxd $direct_influx_cpu CPU s); sink $sink_rate points/s ($sink_secs s, $sink_cpu CPU s, peak RSS $sink_rss MiB, $sink_faults minor faults; influxd $sink_influx_cpu, broker $sink_broker_cpu CPU s); ratio $(awk -v a="$sink_rate" -v b="$direct_rate" 'BEGIN{printf "%.2f", a / b}'); stored $stored_direct / $stored_sink"
  [ "$stored_direct" = "$points" ] && [ "$stored_sink" = "$points" ] || { echo "point counts differ from $points" >&2; exit 1; }
done

if [ "$log_records" -gt 0 ]; then
  read -r es_secs es_cpu es_rss _ _ es_faults <<<"$(run_sink es elasticsearch logs-bench "$log_records")"
  docs=$(curl -sf "http://127.0.0.1:$es_port/logs-bench/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  echo "elasticsearch test server: $(awk -v n="$log_records" -v s="$es_secs" 'BEGIN{printf "%.0f", n / s}') documents/s ($es_secs s, $es_cpu CPU s, peak RSS $es_rss MiB, $es_faults minor faults); $docs documents stored"
fi
echo "seconds waited for a quiet InfluxDB before each run: ${quiet_waits[*]}"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
