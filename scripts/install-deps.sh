#!/usr/bin/env bash
# Installs what building and testing millrace needs on a Debian machine:
#   build: cmake, a C toolchain and the OpenSSL headers (librdkafka is compiled statically by
#          rdkafka's cmake-build feature, with OpenSSL for SSL and SASL/SCRAM), and the libcurl
#          headers (librdkafka 2.12's rdkafka_conf.c includes curl.h even when built without
#          curl; nothing links against libcurl);
#   tests (with --tests): kcat, iproute2 (network namespaces for the partition tests), influxdb
#          (only for /usr/bin/influxd: tests/src/influx.rs runs private influxd processes on free
#          ports; the packaged service is neither started nor enabled, see below), and the Python
#          Kafka clients from tests/python/requirements.txt, and tmux (the `millrace top` test
#          drives the real terminal UI in a tmux pane), and faketime (libfaketime: the nemesis
#          steps one broker's wall clock without touching the host's), and prometheus (for promtool,
#          which checks and unit-tests deploy/prometheus/alerts.yml), and the two other Kafka
#          client families of tests/tests/client_families.rs: Node.js with npm and kafkajs (from
#          tests/js/package-lock.json, into tests/js/node_modules), and Go with Debian's Sarama
#          (golang-go, golang-github-shopify-sarama-dev: the test builds tests/go/sarama_check
#          against /usr/share/gocode, without downloading Go modules).
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--tests" ] && want_tests=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(cmake build-essential pkg-config libcurl4-openssl-dev libssl-dev)
[ "$want_tests" = 1 ] && packages+=(kcat iproute2 influxdb tmux faketime prometheus nodejs golang-go golang-github-shopify-sarama-dev)
# npm only where node has none: Debian's npm conflicts with a nodejs that bundles its own (as
# NodeSource's does), and apt-get would refuse the whole install.
[ "$want_tests" = 1 ] && ! command -v npm >/dev/null && packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  # Not `dpkg -s`: it also succeeds for a removed package whose conffiles remain (influxdb has some).
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  # influxdb's postinst starts its service and fails the whole install when that fails
  # (`invoke-rc.d influxdb start || exit 1`: e.g. without systemd but with a known runlevel, its
  # init script's `ulimit -n 65536` fails where the hard limit is lower, as in containers). Deny
  # service starts during the install with a temporary policy-rc.d (honoured by invoke-rc.d and
  # deb-systemd-invoke, as in Docker images), unless the machine has its own.
  # prometheus (for promtool, which checks deploy/prometheus/alerts.yml) would start its server too.
  if [[ " ${missing[*]} " == *" influxdb "* || " ${missing[*]} " == *" prometheus "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" influxdb "* ]]; then
    # Nothing uses the packaged service (Debian's config listens on :8086 without auth): keep it
    # from starting at boot (sysvinit links and the systemd unit alike).
    $SUDO update-rc.d influxdb disable >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi

if [ "$want_tests" = 1 ]; then
  command -v influxd >/dev/null || { echo "influxd is missing after installing influxdb" >&2; exit 1; }
  command -v promtool >/dev/null || { echo "promtool is missing after installing prometheus" >&2; exit 1; }
  python3 -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
  python3 -c "import confluent_kafka, kafka" \
    || { echo "Python Kafka clients failed to install" >&2; exit 1; }
  command -v node >/dev/null || { echo "node is missing after installing nodejs" >&2; exit 1; }
  command -v npm >/dev/null || { echo "npm is missing after installing nodejs and npm" >&2; exit 1; }
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
  (cd tests/js && node -e 'require("kafkajs")') \
    || { echo "kafkajs failed to install into tests/js/node_modules" >&2; exit 1; }
  command -v go >/dev/null || { echo "go is missing after installing golang-go" >&2; exit 1; }
  [ -f /usr/share/gocode/src/github.com/Shopify/sarama/sarama.go ] \
    || { echo "Sarama is missing from /usr/share/gocode after installing golang-github-shopify-sarama-dev" >&2; exit 1; }
fi
