#!/usr/bin/env bash
# Agent benchmark: file → broker, side by side with rsyslog (imfile + omkafka) in the same run
# (issue 5).
#   ./scripts/bench_agent.sh [LINES]      # default 1000000 lines of ~185 bytes (~176 MiB); ~5 minutes
# 1. installs rsyslog and rsyslog-kafka (Debian packages) if missing, builds the release binary;
# 2. starts a release broker on free loopback ports, data in a temporary directory on the disk
#    bench.sh measures;
# 3. writes the input once (scripts/bench_agent_lines.py): LINES nginx-access-like lines, each with
#    a sequence number, into one file, and LINES/100 lines into each of 100 other files;
# 4. backlog cases (1 file, then 100 files): runs `millrace agent`, then rsyslogd, each alone, from a
#    fresh state directory, reading from the beginning, into its own 4-partition topic, with the
#    same producer settings: acks=all, enable.idempotence=true, lz4, linger.ms=5, batch.size=1 MiB,
#    a 64 MiB client queue, records keyed by host:path (librdkafka's default partitioner for both).
#    rsyslog's template writes a JSON document per line much like the agent's record (the same
#    fields except the file's device, inode and fingerprint). Measured for each: the wall time from
#    the start of the process until every line is in the topic (the partitions' log end offsets,
#    polled every POLL_SECONDS, default 0.2), the process's user+system CPU at that moment
#    (/proc/PID/stat), its peak RSS (VmHWM), then its RSS (VmRSS) and CPU while it keeps tailing the
#    idle files for STEADY_SECONDS (default 15), and the broker's CPU; then it is stopped (SIGTERM)
#    and the topic must hold exactly the lines written (more would be duplicates). The batches the
#    broker stored are read back from its segment files: count, codec, producer ids.
# 5. live case: 100 new files of LIVE_PREFILL lines (default 1) each; once the shipper has sent
#    those, scripts/bench_agent_lines.py appends LIVE_RATE lines/s (default 2000) round-robin over the
#    files for LIVE_SECONDS (default 30). Measured: VmRSS every second meanwhile, CPU, and the time
#    from the last append until every line is in the topic. Agent first, then rsyslog, each on its
#    own files.
# 6. prints a summary table with the agent/rsyslog ratios, then the WARN/ERROR lines of the agent's
#    logs and rsyslog's own messages (KEEP_LOGS=DIR keeps the logs, configurations and raw results).
# SHIPPERS="agent" (default "agent rsyslog") runs only the named shippers, e.g. while tuning.
# A shipper that has not delivered every line after TIMEOUT_SECONDS (default 900), or whose topic did
# not grow for STALL_SECONDS (default 60), is stopped and reported as such.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
files=100
poll=${POLL_SECONDS:-0.2}
steady=${STEADY_SECONDS:-15}
timeout_s=${TIMEOUT_SECONDS:-900}
stall_s=${STALL_SECONDS:-60}
live_prefill=${LIVE_PREFILL:-1}
live_rate=${LIVE_RATE:-2000}
live_seconds=${LIVE_SECONDS:-30}
partitions=4
shippers=${SHIPPERS:-agent rsyslog}
if [ $((lines % files)) != 0 ]; then
  echo "LINES must be a multiple of $files" >&2
  exit 2
fi

./scripts/install-deps.sh
missing=()
for p in rsyslog rsyslog-kafka; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  # Only the rsyslogd binary and its modules are used: the benchmark runs its own instance with its
  # own configuration, never the system service.
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# MILLRACE_BIN=PATH uses that binary instead of building (e.g. to alternate two builds).
[ -n "${MILLRACE_BIN:-}" ] || cargo build --release --bin millrace -q
bin=${MILLRACE_BIN:-$PWD/target/release/millrace}
lines_py=$PWD/scripts/bench_agent_lines.py
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-agent.XXXXXX")
pids=()

stop_pid() { # PID — SIGTERM, then waits (bounded) for it to exit
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 400); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  echo "pid $1 did not stop within 40 s; killing it" >&2
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.tsv "$work"/*.conf "$work"/*.toml "$KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # user + system
seconds() { awk -v t="$1" -v h="$clk_tck" 'BEGIN{printf "%.2f", t / h}'; } # ticks → seconds
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; } # PID VmHWM|VmRSS
end_offsets() { # TOPIC — sum of the partitions' log end offsets (0 if the broker does not answer)
  "$bin" topic describe --bootstrap "$bootstrap" "$1" 2>/dev/null \
    | awk -F'\t' '/Partition:/{for(i=1;i<=NF;i++) if($i ~ /^LogEndOffset: /){sub(/^LogEndOffset: /,"",$i); s+=$i}} END{print s+0}'
}
now_ns() { date +%s%N; }

echo "## machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), cores: $(nproc), memory: $(free -g | awk '/Mem:/{print $2}') GiB"
echo "file system: $(df -h "$work" | awk 'NR==2{print $1, $2}')"
echo "millrace: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
echo "rsyslog: $(dpkg-query -W -f '${Version}' rsyslog), rsyslog-kafka $(dpkg-query -W -f '${Version}' rsyslog-kafka), librdkafka (omkafka) $(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null || echo '?')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

read -r port admin <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
bootstrap="127.0.0.1:$port"
MILLRACE_LOG=info "$bin" broker --data-dir "$work/broker-data" --listen "$bootstrap" --admin-listen "127.0.0.1:$admin" \
  >"$work/broker.log" 2>&1 &
broker_pid=$!
pids+=("$broker_pid")
for _ in $(seq 300); do grep -q "broker ready" "$work/broker.log" 2>/dev/null && break; sleep 0.1; done
grep -q "broker ready" "$work/broker.log" || { echo "the broker did not start; its log:" >&2; tail -n 30 "$work/broker.log" >&2; exit 1; }
echo "## broker on $bootstrap"

file_names() { # DIR — the 100 files of a case
  for i in $(seq 0 $((files - 1))); do printf '%s/access-%03d.log\n' "$1" "$i"; done
}
echo "## input: $lines lines in 1 file, and $((lines / files)) lines in each of $files files"
mkdir -p "$work/in-1" "$work/in-$files"
python3 "$lines_py" write "$lines" "$work/in-1/access.log" --seed 1
mapfile -t many < <(file_names "$work/in-$files")
python3 "$lines_py" write $((lines / files)) "${many[@]}" --seed 100
bytes_1=$(du -b "$work/in-1/access.log" | cut -f1)
bytes_many=$(cat "${many[@]}" | wc -c)
echo "1 file: $bytes_1 bytes ($((bytes_1 / lines)) per line); $files files: $bytes_many bytes"

agent_config() { # CASE TOPIC GLOB
  cat >"$work/agent-$1.toml" <<EOF
[agent]
host_name = "bench-host"
data_dir = "$work/agent-state-$1"
checkpoint_interval = "1s"

[output]
bootstrap = "$bootstrap"
acks = "all"
idempotence = true
compression = "lz4"
linger = "5ms"
batch_bytes = "1MiB"
queue_bytes = "64MiB"

[[inputs.file]]
name = "nginx"
topic = "$2"
include = ["$3"]
start_at = "beginning"
key = "file"
EOF
}

rsyslog_config() { # CASE TOPIC GLOB
  mkdir -p "$work/rsyslog-state-$1"
  # The imfile input is bound to its own ruleset, so the default ruleset only sees rsyslog's own
  # messages (processInternalMessages: not sent to the system's log socket): they go to a file, for
  # the report. No system logging (no imuxsock, no imklog). Queues and imfile settings: defaults.
  cat >"$work/rsyslog-$1.conf" <<EOF
global(workDirectory="$work/rsyslog-state-$1" localHostName="bench-host" processInternalMessages="on")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="bench_record" type="string"
  string="{\"@timestamp\":\"%timegenerated:::date-rfc3339%\",\"event\":{\"kind\":\"log\",\"schema\":1},\"host\":{\"name\":\"%hostname%\"},\"input\":{\"name\":\"nginx\",\"type\":\"file\"},\"log\":{\"file\":{\"path\":\"%\$!metadata!filename:::json%\"},\"offset\":%\$!metadata!fileoffset%},\"message\":\"%msg:::json%\"}")
template(name="bench_key" type="string" string="%hostname%:%\$!metadata!filename%")
ruleset(name="to_broker") {
  action(type="omkafka" broker=["$bootstrap"] topic="$2" template="bench_record"
         dynaKey="on" key="bench_key" partitions.auto="on"
         confParam=["enable.idempotence=true", "compression.codec=lz4", "linger.ms=5",
                    "batch.size=1048576", "queue.buffering.max.kbytes=65536"]
         topicConfParam=["acks=all"])
}
input(type="imfile" file="$3" tag="nginx" ruleset="to_broker" freshStartTail="off" addMetadata="on")
*.* action(type="omfile" file="$work/rsyslog-$1.log")
EOF
  rsyslogd -N1 -f "$work/rsyslog-$1.conf" >"$work/rsyslog-$1-check.log" 2>&1 \
    || { echo "rsyslog rejects its configuration:" >&2; cat "$work/rsyslog-$1-check.log" >&2; exit 1; }
}

start_shipper() { # SHIPPER CASE TOPIC GLOB — creates the topic, starts the shipper; sets pid and t0
  "$bin" topic create "$3" --partitions $partitions --bootstrap "$bootstrap" >/dev/null
  case $1 in
    agent)
      agent_config "$2" "$3" "$4"
      t0=$(now_ns)
      MILLRACE_LOG=info "$bin" agent --config "$work/agent-$2.toml" >"$work/agent-$2.log" 2>&1 &
      ;;
    rsyslog)
      rsyslog_config "$2" "$3" "$4"
      t0=$(now_ns)
      rsyslogd -n -f "$work/rsyslog-$2.conf" -i "$work/rsyslog-$2.pid" >"$work/rsyslog-$2-stderr.log" 2>&1 &
      ;;
  esac
  pid=$!
  pids+=("$pid")
}

# Waits until TOPIC holds COUNT records; sets reached_ms (ms since START_NS) or leaves it empty when
# the shipper exited, stalled for STALL_SECONDS or ran out of TIMEOUT_SECONDS.
wait_records() { # LABEL TOPIC COUNT PID START_NS
  local label=$1 topic=$2 count=$3 p=$4 start=$5 n elapsed last_n=-1 last_change=0 last_report=0
  reached_ms=""
  while :; do
    n=$(end_offsets "$topic")
    elapsed=$((($(now_ns) - start) / 1000000))
    if [ "$n" -ge "$count" ]; then
      reached_ms=$elapsed
      return 0
    fi
    if ! kill -0 "$p" 2>/dev/null; then
      echo "$label exited early with $n of $count records delivered" >&2
      return 1
    fi
    if [ "$n" != "$last_n" ]; then last_n=$n; last_change=$elapsed; fi
    if [ "$elapsed" -ge $((timeout_s * 1000)) ] || [ $((elapsed - last_change)) -ge $((stall_s * 1000)) ]; then
      echo "$label: only $n of $count records after $((elapsed / 1000)) s, none for $(((elapsed - last_change) / 1000)) s; giving up" >&2
      return 1
    fi
    if [ "$elapsed" -ge $((last_report + 10000)) ]; then
      last_report=$elapsed
      echo "  $label: $((elapsed / 1000)) s, $n records, RSS $(status_kib "$p" VmRSS) KiB"
    fi
    sleep "$poll"
  done
}

# What the broker stored for TOPIC, read from its segment files (Kafka's record batch format v2):
# batches, bytes, compression codecs, and producer ids (-1: not idempotent), tab-separated.
batch_stats() {
  python3 - "$work/broker-data" "$1" <<'PY'
import glob, os, struct, sys

base, topic = sys.argv[1:]
codec_names = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
batches, stored, codecs, producers = 0, 0, set(), set()
for segment in glob.glob(f"{base}/{topic}-*/*.log"):
    size = os.path.getsize(segment)
    stored += size
    with open(segment, "rb") as f:
        pos = 0
        while pos + 61 <= size:
            f.seek(pos)
            head = f.read(61)
            length, = struct.unpack_from(">i", head, 8)
            attributes, = struct.unpack_from(">h", head, 21)
            producer, = struct.unpack_from(">q", head, 43)
            batches += 1
            codecs.add(codec_names.get(attributes & 7, str(attributes & 7)))
            producers.add(producer)
            pos += 12 + length
print(f"{batches}\t{stored}\t{','.join(sorted(codecs))}\t{','.join(map(str, sorted(producers)))}")
PY
}

record_bytes() { # TOPIC — mean size of the first 20000 records (empty without kcat)
  if command -v kcat >/dev/null; then
    kcat -b "$bootstrap" -C -t "$1" -o beginning -c 20000 -e -q -f '%S\n' 2>/dev/null \
      | awk '{s += $1} END {if (NR) printf "%.0f", s / NR}'
  fi
}

results="$work/results.tsv"
run_case() { # SHIPPER CASE GLOB INPUT_BYTES — a backlog: every line is there before the shipper starts
  local shipper=$1 kind=$2 glob=$3 input_bytes=$4
  local topic="bench-$shipper-$kind" t_done="" cpu_done="" hwm="" broker0
  broker0=$(cpu_ticks "$broker_pid")
  start_shipper "$shipper" "$kind" "$topic" "$glob"
  if wait_records "$shipper, $kind" "$topic" "$lines" "$pid" "$t0"; then t_done=$reached_ms; fi
  kill -0 "$pid" 2>/dev/null && cpu_done=$(cpu_ticks "$pid")
  local steady_kib="" steady_min="" steady_max="" idle_ticks=""
  if [ -n "$t_done" ] && kill -0 "$pid" 2>/dev/null; then
    # Everything is shipped; the files stay open and tailed. Sample the resident set meanwhile.
    local c0 r
    c0=$(cpu_ticks "$pid")
    for _ in $(seq "$steady"); do
      sleep 1
      r=$(status_kib "$pid" VmRSS)
      steady_min=$((${steady_min:-r} < r ? ${steady_min:-r} : r))
      steady_max=$((${steady_max:-0} > r ? ${steady_max:-0} : r))
    done
    steady_kib=$r
    idle_ticks=$(($(cpu_ticks "$pid") - c0))
    hwm=$(status_kib "$pid" VmHWM)
  fi
  local broker_ticks=$(($(cpu_ticks "$broker_pid") - broker0))
  stop_pid "$pid"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shipper" "$kind" "$lines" "$input_bytes" \
    "$t_done" "$(seconds "${cpu_done:-0}")" "$hwm" "$steady_kib" "$steady_min" "$steady_max" \
    "$(seconds "${idle_ticks:-0}")" "$(seconds "$broker_ticks")" "$(end_offsets "$topic")" "$steady" \
    "$(record_bytes "$topic")" "$(batch_stats "$topic")" | tee -a "$results"
}

live="$work/live.tsv"
run_live() { # SHIPPER — 100 small files, then LIVE_RATE lines/s appended to them for LIVE_SECONDS
  local shipper=$1 dir="$work/live-$1" topic="bench-$1-live" names prefilled appended=0 lag="" broker0
  mkdir -p "$dir"
  mapfile -t names < <(file_names "$dir")
  python3 "$lines_py" write "$live_prefill" "${names[@]}" --seed 300
  prefilled=$((live_prefill * files))
  broker0=$(cpu_ticks "$broker_pid")
  start_shipper "$shipper" live "$topic" "$dir/*.log"
  local rss_min="" rss_max="" rss="" c0="" ticks="" hwm="" window_ms=""
  if wait_records "$shipper, live (first $prefilled lines)" "$topic" "$prefilled" "$pid" "$t0"; then
    sleep 2
    c0=$(cpu_ticks "$pid")
    local w0 writer
    w0=$(now_ns)
    python3 "$lines_py" append --rate "$live_rate" --seconds "$live_seconds" "${names[@]}" >"$work/live-$shipper-appended.tsv" &
    writer=$!
    while kill -0 "$writer" 2>/dev/null; do
      sleep 1
      rss=$(status_kib "$pid" VmRSS)
      [ -n "$rss" ] || break
      rss_min=$((${rss_min:-rss} < rss ? ${rss_min:-rss} : rss))
      rss_max=$((${rss_max:-0} > rss ? ${rss_max:-0} : rss))
    done
    wait "$writer" || true
    appended=$(cat "$work/live-$shipper-appended.tsv")
    local w1
    w1=$(now_ns)
    if wait_records "$shipper, live" "$topic" $((prefilled + appended)) "$pid" "$w1"; then lag=$reached_ms; fi
    if kill -0 "$pid" 2>/dev/null; then
      ticks=$(($(cpu_ticks "$pid") - c0))
      window_ms=$((($(now_ns) - w0) / 1000000))
      hwm=$(status_kib "$pid" VmHWM)
    fi
  fi
  local broker_ticks=$(($(cpu_ticks "$broker_pid") - broker0))
  stop_pid "$pid"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shipper" "$live_rate" "$live_seconds" \
    $((prefilled + appended)) "$(end_offsets "$topic")" "$(seconds "${ticks:-0}")" "$window_ms" "$rss_min" "$rss_max" \
    "$rss" "$hwm" "$lag" "$(seconds "$broker_ticks")" | tee -a "$live"
}

echo "## backlog runs (shipper, case, lines, input bytes, ms to the last record, CPU s, peak RSS KiB, steady RSS KiB last/min/max, idle CPU s, broker CPU s, records in topic, steady window s, avg record bytes, batches, stored bytes, codecs, producer ids)"
for shipper in $shippers; do run_case "$shipper" 1file "$work/in-1/*.log" "$bytes_1"; done
for shipper in $shippers; do run_case "$shipper" ${files}files "$work/in-$files/*.log" "$bytes_many"; done
echo "## live runs (shipper, lines/s appended, seconds, lines written, records in topic, CPU s, window ms, RSS KiB min/max/last while appending, peak RSS KiB, ms from the last append to the last record, broker CPU s)"
for shipper in $shippers; do run_live "$shipper"; done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## summary"
python3 - "$results" "$live" <<'PY'
import re, sys

MiB, GiB = 1 << 20, 1 << 30
opt = lambda s, t=int: t(s) if s else None

rows = {}
for line in open(sys.argv[1]):
    c = line.rstrip("\n").split("\t")
    rows[(c[0], c[1])] = dict(
        lines=int(c[2]), bytes=int(c[3]), ms=opt(c[4], float), cpu=float(c[5]), hwm=opt(c[6]), steady=opt(c[7]),
        steady_min=opt(c[8]), steady_max=opt(c[9]), idle_cpu=float(c[10]), broker_cpu=float(c[11]),
        final=int(c[12]), window=int(c[13]), record=opt(c[14]), batches=int(c[15]), stored=int(c[16]),
        codecs=c[17], producers=c[18])

def metrics(r):
    if r is None or r["ms"] is None:
        return {}
    s = r["ms"] / 1000
    return {
        "lines/s": r["lines"] / s,
        "MiB/s (input)": r["bytes"] / MiB / s,
        "CPU s per GiB (input)": r["cpu"] / (r["bytes"] / GiB),
        "peak RSS MiB": r["hwm"] / 1024 if r["hwm"] else None,
        "steady RSS MiB": r["steady"] / 1024 if r["steady"] else None,
    }

def table(pairs):
    print(f"  {'':34} {'agent':>12} {'rsyslog':>12} {'agent/rsyslog':>14}")
    for key, fmt, va, vr in pairs:
        sa = fmt.format(va) if va is not None else "—"
        sr = fmt.format(vr) if vr is not None else "—"
        ratio = f"{va / vr:.2f}" if va is not None and vr else "—"
        print(f"  {key:34} {sa:>12} {sr:>12} {ratio:>14}")

fmt = {"lines/s": "{:,.0f}", "MiB/s (input)": "{:.1f}", "CPU s per GiB (input)": "{:.1f}",
       "peak RSS MiB": "{:.1f}", "steady RSS MiB": "{:.1f}"}
for case in sorted({k[1] for k in rows}, key=lambda c: int(re.match(r"\d+", c).group())):
    a, r = rows.get(("agent", case)), rows.get(("rsyslog", case))
    ma, mr = metrics(a), metrics(r)
    print(f"backlog, {case}: {(a or r)['lines']:,} lines, {(a or r)['bytes'] / MiB:.1f} MiB of input")
    table([(k, f, ma.get(k), mr.get(k)) for k, f in fmt.items()])
    for name, x in (("agent", a), ("rsyslog", r)):
        if x is None:
            continue
        extra = []
        if x["ms"] is not None:
            extra.append(f"{x['ms'] / 1000:.1f} s, {x['cpu']:.1f} CPU s, broker {x['broker_cpu']:.1f} CPU s")
        else:
            extra.append("did not deliver every line")
        if x["steady"]:
            extra.append(f"RSS {x['steady_min'] / 1024:.1f}–{x['steady_max'] / 1024:.1f} MiB and "
                         f"{100 * x['idle_cpu'] / x['window']:.1f} % CPU over {x['window']} s of idle tailing")
        if x["record"]:
            extra.append(f"records of ~{x['record']} B")
        if x["batches"]:
            idempotent = "-1" not in x["producers"].split(",")
            extra.append(f"{x['batches']:,} batches of ~{x['final'] / x['batches']:,.0f} records, {x['codecs']}, "
                         f"{x['stored'] / MiB:.1f} MiB stored, producer id {x['producers']}"
                         f"{' (idempotent)' if idempotent else ' (NOT idempotent)'}")
        missing = x["lines"] - x["final"]
        extra.append("every line in the topic once" if missing == 0 else
                     (f"{missing} lines missing" if missing > 0 else f"{-missing} records more than lines (duplicates)"))
        print(f"  {name}: " + "; ".join(extra))

live = {}
for line in open(sys.argv[2]):
    c = line.rstrip("\n").split("\t")
    live[c[0]] = dict(rate=float(c[1]), seconds=float(c[2]), written=int(c[3]), final=int(c[4]), cpu=float(c[5]),
                      window=opt(c[6]), rss_min=opt(c[7]), rss_max=opt(c[8]), rss=opt(c[9]), hwm=opt(c[10]),
                      lag=opt(c[11]), broker_cpu=float(c[12]))
if live:
    x = next(iter(live.values()))
    print(f"live, 100 files: {x['rate']:,.0f} lines/s appended for {x['seconds']:.0f} s")
    a, r = live.get("agent", {}), live.get("rsyslog", {})
    kib = lambda d, k: d[k] / 1024 if d.get(k) else None
    pct = lambda d: 100 * d["cpu"] / (d["window"] / 1000) if d.get("window") else None
    table([("RSS while tailing, max MiB", "{:.1f}", kib(a, "rss_max"), kib(r, "rss_max")),
           ("RSS at the end MiB", "{:.1f}", kib(a, "rss"), kib(r, "rss")),
           ("peak RSS MiB", "{:.1f}", kib(a, "hwm"), kib(r, "hwm")),
           ("CPU % of a core", "{:.1f}", pct(a), pct(r)),
           ("last append → last record, ms", "{:,.0f}", a.get("lag"), r.get("lag"))])
    for name, d in (("agent", a), ("rsyslog", r)):
        if d:
            missing = d["written"] - d["final"]
            print(f"  {name}: " + ("every line in the topic once" if missing == 0 else
                                   (f"{missing} lines missing" if missing > 0 else f"{-missing} duplicates")))
PY

echo "## agent logs: WARN/ERROR lines and panics (numbers folded, most frequent first)"
for kind in 1file ${files}files live; do
  echo "-- agent, $kind: $(grep -c -E ' (WARN|ERROR) |panicked' "$work/agent-$kind.log" || true) lines"
  grep -E ' (WARN|ERROR) |panicked' "$work/agent-$kind.log" | cut -d' ' -f2- | sed -E 's/[0-9]+/N/g' | cut -c1-200 \
    | sort | uniq -c | sort -rn | head -n 8 || true
done
echo "## rsyslog's own messages (numbers folded, most frequent first)"
for kind in 1file ${files}files live; do
  cat "$work/rsyslog-$kind.log" "$work/rsyslog-$kind-stderr.log" 2>/dev/null | cut -d' ' -f4- | sed -E 's/[0-9]+/N/g' \
    | cut -c1-200 | sort | uniq -c | sort -rn | head -n 8 | sed "s/^/[$kind] /" || true
done
