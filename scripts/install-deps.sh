#!/usr/bin/env bash
# Installs what building and testing millrace needs on a Debian machine:
#   build: cmake and a C toolchain (librdkafka is compiled statically by rdkafka's cmake-build
#          feature) and the libcurl headers (librdkafka 2.12's rdkafka_conf.c includes curl.h even
#          when built without curl; nothing links against libcurl);
#   tests (with --tests): kcat, iproute2 (network namespaces for the partition tests), and the
#          Python Kafka clients from tests/python/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--tests" ] && want_tests=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(cmake build-essential pkg-config libcurl4-openssl-dev)
[ "$want_tests" = 1 ] && packages+=(kcat iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$want_tests" = 1 ]; then
  python3 -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
  python3 -c "import confluent_kafka, kafka" \
    || { echo "Python Kafka clients failed to install" >&2; exit 1; }
fi
