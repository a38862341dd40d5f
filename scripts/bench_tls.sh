#!/usr/bin/env bash
# Produce and consume throughput over PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512) listeners of
# one broker, in the same run, alternating protocols each round:
#   ./scripts/bench_tls.sh [BIN] [ROUNDS] [RECORDS] [RECORD_SIZE]
# Certificates come from a throw-away CA made with openssl; the SASL user is created with
# `millrace user create`. Each round and protocol gets a fresh 4-partition topic; the client is
# `millrace bench` (librdkafka, acks=all with idempotence), given the listener's client
# properties with --command-config. Prints one line per phase with records/s and MiB/s.
set -euo pipefail
bin=${1:-./target/release/millrace}; rounds=${2:-3}; records=${3:-200000}; size=${4:-1024}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-tls.XXXXXX")
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/san.ext"
openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/san.ext" -out "$work/broker.pem" 2>/dev/null

plain=$(free_port); ssl=$(free_port); sasl=$(free_port); admin=$(free_port)
cat >"$work/broker.toml" <<EOF
data_dir = "$work/data"
listen = "127.0.0.1:$plain"
admin_listen = "127.0.0.1:$admin"
[[listeners]]
name = "SSL"
listen = "127.0.0.1:$ssl"
[[listeners]]
name = "SASL_SSL"
listen = "127.0.0.1:$sasl"
[tls]
certificate_file = "$work/broker.pem"
key_file = "$work/broker.key"
ca_file = "$work/ca.pem"
EOF
MILLRACE_LOG=warn "$bin" broker --config "$work/broker.toml" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$plain) 2>/dev/null && break; sleep 0.05; done
printf 'bench-password\n' >"$work/password"
"$bin" user create bench --password-file "$work/password" --bootstrap "127.0.0.1:$plain" >/dev/null
printf 'security.protocol=PLAINTEXT\n' >"$work/PLAINTEXT.properties"
printf 'security.protocol=SSL\nssl.ca.location=%s\n' "$work/ca.pem" >"$work/SSL.properties"
printf 'security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=bench\nsasl.password=bench-password\nssl.ca.location=%s\n' \
  "$work/ca.pem" >"$work/SASL_SSL.properties"
declare -A port=([PLAINTEXT]=$plain [SSL]=$ssl [SASL_SSL]=$sasl)
for round in $(seq 1 "$rounds"); do
  for protocol in PLAINTEXT SSL SASL_SSL; do
    topic="bench-$protocol-$round"
    "$bin" topic create "$topic" --partitions 4 --bootstrap "127.0.0.1:$plain" >/dev/null
    "$bin" bench --bootstrap "127.0.0.1:${port[$protocol]}" --command-config "$work/$protocol.properties" \
      --topic "$topic" --records "$records" --record-size "$size" --acks all 2>&1 \
      | grep -E '^(produce|consume)\b' | sed "s/^/round $round $protocol /"
  done
done
