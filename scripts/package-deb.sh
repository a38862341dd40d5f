#!/usr/bin/env bash
# Builds millrace_<version>_<arch>.deb: /usr/bin/millrace, hardened systemd units for the broker,
# the agent and the sinks (packaging/deb), default configurations in /etc/millrace (the examples,
# with state under /var/lib/millrace), and the README.
#   ./scripts/package-deb.sh                      # release build, into target/debian/
#   ./scripts/package-deb.sh --binary PATH --out DIR --fast   # a given binary, light compression
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/debian"
compression=(-Zxz)
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --fast) compression=(-Zgzip -z1); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --release --bin millrace
  binary="target/release/millrace"
fi
[ -x "$binary" ] || { echo "no executable at $binary" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
arch="$(dpkg --print-architecture)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$binary" "$root/usr/bin/millrace"
for unit in broker agent sink; do
  install -D -m 0644 "packaging/deb/millrace-$unit.service" "$root/lib/systemd/system/millrace-$unit.service"
done
install -d -m 0755 "$root/etc/millrace"
sed 's|^data_dir = "millrace-data"|data_dir = "/var/lib/millrace/broker"|' config/examples/broker.toml \
  > "$root/etc/millrace/broker.toml"
sed 's|^data_dir = "millrace-agent-data"|data_dir = "/var/lib/millrace/agent"|' config/examples/agent.toml \
  > "$root/etc/millrace/agent.toml"
cp config/examples/sink.toml "$root/etc/millrace/sink.toml"
grep -q '^data_dir = "/var/lib/millrace/broker"' "$root/etc/millrace/broker.toml"
grep -q '^data_dir = "/var/lib/millrace/agent"' "$root/etc/millrace/agent.toml"
install -D -m 0644 README.md "$root/usr/share/doc/millrace/README.md"
install -D -m 0644 docs/operations.md "$root/usr/share/doc/millrace/operations.md"

install -d -m 0755 "$root/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$script" "$root/DEBIAN/$script"
done
printf '/etc/millrace/broker.toml\n/etc/millrace/agent.toml\n/etc/millrace/sink.toml\n' > "$root/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
# The packages holding the shared libraries the binary links (libssl, zlib, libc, …).
depends="$(ldd "$binary" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')"
[ -n "$depends" ] || { echo "could not find the packages of the binary's libraries" >&2; exit 1; }
cat > "$root/DEBIAN/control" <<CONTROL
Package: millrace
Version: $version
Architecture: $arch
Maintainer: millrace developers <millrace@localhost>
Installed-Size: $size
Depends: adduser, $depends
Section: net
Priority: optional
Description: observability pipeline: agent, Kafka-protocol broker, sinks
 An agent that tails logs and samples host metrics, a replicated, partitioned
 broker speaking the Kafka wire protocol, and sink workers forwarding topics
 to Elasticsearch and InfluxDB, with systemd units for each.
CONTROL

mkdir -p "$out"
deb="$out/millrace_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compression[@]}" --build "$root" "$deb" >/dev/null
echo "$deb"
