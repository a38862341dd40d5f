#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another (docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; with no TARGET every target runs. Needs the nightly
# toolchain; installs cargo-fuzz if missing. Each target grows its corpus in fuzz/corpus/<target>/
# (only the seed-* files there are committed) and writes crashes to fuzz/artifacts/<target>/.
# Prints, per target: executions, coverage (cov and ft from libFuzzer's last stats line) and
# crashes. Exits non-zero if any target crashed.
#
# The build has no sanitizer (the workspace forbids unsafe code; the C codecs are not
# instrumented either way) and debug assertions on, so integer overflow panics.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
all_targets=(kafka_request record_batch syslog prometheus sink_records config agent_lines fetched_records)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi

max_len() {
    case $1 in
        kafka_request) echo 16384 ;;
        record_batch) echo 65536 ;;
        syslog) echo 8192 ;;
        prometheus) echo 16384 ;;
        sink_records) echo 8192 ;;
        config) echo 16384 ;;
        fetched_records) echo 65536 ;;
        *) echo 4096 ;;
    esac
}

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi

build_flags=(--sanitizer none --debug-assertions)
cargo +nightly fuzz build "${build_flags[@]}"

logs=artifacts/logs
mkdir -p "$logs"
failed=0
printf '%-14s %8s %14s %8s %8s %8s\n' target seconds executions cov ft crashes
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    found() { find "artifacts/$target" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | sort; }
    before=$(found)
    log="$logs/$target.log"
    status=0
    cargo +nightly fuzz run "${build_flags[@]}" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    new=$(comm -13 <(echo "$before") <(found) | sed '/^$/d')
    crashes=$(echo -n "$new" | grep -c . || true)
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        echo "$target: libFuzzer exited with status $status and saved no input; see fuzz/$log" >&2
        crashes=1
    fi
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    stats=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")
    printf '%-14s %8s %14s %8s %8s %8s\n' "$target" "$seconds" "${executions:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
    if [ "$crashes" -ne 0 ]; then
        failed=1
        [ -n "$new" ] && sed 's/^/    fuzz\//' <<<"$new" >&2
    fi
done
exit "$failed"
