#!/usr/bin/env bash
# Broker throughput benchmark, side by side with the raw disk it writes to.
#   ./scripts/bench.sh [RECORDS_100B] [RECORDS_1KIB]
# 1. raw disk: dd of 2 GiB with one fdatasync at the end (buffered sequential write bandwidth),
#    and dd with oflag=dsync in 1 MiB blocks (synchronous write bandwidth);
# 2. starts a release broker on a free port with its data dir on the same file system;
# 3. `millrace bench` (librdkafka) for 100-byte and 1 KiB records at acks=1 and acks=all
#    (acks=all enables idempotence, as modern clients do), producing then consuming;
# 4. the broker's peak RSS (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
records_small=${1:-3000000}
records_large=${2:-1000000}
./scripts/install-deps.sh
# MILLRACE_BIN=PATH uses that binary instead of building (e.g. to alternate two builds).
[ -n "${MILLRACE_BIN:-}" ] || cargo build --release --bin millrace -q
bin=${MILLRACE_BIN:-./target/release/millrace}
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench.XXXXXX")
cleanup() {
  if [ -n "${broker_pid:-}" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "## machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), cores: $(nproc), memory: $(free -g | awk '/Mem:/{print $2}') GiB"
echo "file system: $(df -h "$work" | awk 'NR==2{print $1, $2}')"

echo "## raw disk"
dd if=/dev/zero of="$work/dd" bs=1M count=2048 conv=fdatasync 2>&1 | tail -1 | sed 's/^/buffered+fdatasync: /'
rm -f "$work/dd"
dd if=/dev/zero of="$work/dd" bs=1M count=256 oflag=dsync 2>&1 | tail -1 | sed 's/^/dsync 1MiB blocks: /'
rm -f "$work/dd"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MILLRACE_LOG=warn $bin broker --data-dir "$work/data" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" &
broker_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

echo "## broker"
for size in 100 1024; do
  records=$records_small; [ "$size" = 1024 ] && records=$records_large
  for acks in 1 all; do
    topic="bench-$size-$acks"
    $bin topic create "$topic" --partitions 4 --bootstrap "127.0.0.1:$port" >/dev/null
    $bin bench --bootstrap "127.0.0.1:$port" --topic "$topic" --records "$records" --record-size "$size" --acks "$acks"
  done
done
echo "broker peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$broker_pid/status)"
