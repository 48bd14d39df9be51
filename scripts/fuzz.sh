#!/usr/bin/env bash
# Runs every fuzz target of vhsm-fuzz (a libFuzzer + AddressSanitizer build) for FUZZ_SECONDS each, from its seed
# corpus (written fresh from ../shared/testdata and the project's fixtures, beside what earlier runs found), and
# writes per target: executions/s, total executions, crashes (crash, timeout, OOM or leak artifacts) to FUZZ_CSV.
# Exit status 1 when any target found something; its input is in out/fuzz/artifacts/TARGET/.
set -euo pipefail
: "${FUZZ_BIN:?FUZZ_BIN must name the vhsm-fuzz binary}"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_OUT="${FUZZ_OUT:-out/fuzz}"
FUZZ_CSV="${FUZZ_CSV:-out/fuzz.csv}"
# The Swift runtime keeps metadata and conformance caches for the process's life; LeakSanitizer sees no leak there,
# but a per-input leak is a finding like any other.
FUZZ_FLAGS="${FUZZ_FLAGS:--timeout=10 -rss_limit_mb=2048 -print_final_stats=1}"
targets="${FUZZ_TARGETS:-$("$FUZZ_BIN" list | cut -f1)}"

mkdir -p "$FUZZ_OUT" "$(dirname "$FUZZ_CSV")"
echo "target,seconds,execs_per_sec,total_execs,crashes,corpus_files" >"$FUZZ_CSV"
failed=0
printf '%-20s %8s %12s %14s %8s %8s\n' target seconds 'execs/s' 'total execs' crashes corpus
for target in $targets; do
    corpus="$FUZZ_OUT/corpus/$target"
    artifacts="$FUZZ_OUT/artifacts/$target"
    log="$FUZZ_OUT/$target.log"
    mkdir -p "$corpus" "$artifacts"
    # Writing seeds is no fuzzing: LeakSanitizer stays off for it (Foundation's Process, which runs cryptsetup for
    # the luks2-header seeds, leaks a 32-byte weak-reference side table by itself).
    ASAN_OPTIONS=detect_leaks=0 "$FUZZ_BIN" seeds "$target" "$corpus" >/dev/null
    before=$(find "$artifacts" -type f | wc -l)
    status=0
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    LSAN_OPTIONS="suppressions=$(dirname "$0")/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
        VHSM_FUZZ_TARGET="$target" "$FUZZ_BIN" $FUZZ_FLAGS -max_total_time="$FUZZ_SECONDS" -artifact_prefix="$artifacts/" \
        "$corpus" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # libFuzzer stopped without an artifact (e.g. the runtime refused to start): a failure all the same.
        crashes=1
    fi
    files=$(find "$corpus" -type f | wc -l)
    printf '%-20s %8s %12s %14s %8s %8s\n' "$target" "$FUZZ_SECONDS" "${rate:-?}" "${execs:-?}" "$crashes" "$files"
    echo "$target,$FUZZ_SECONDS,${rate:-},${execs:-},$crashes,$files" >>"$FUZZ_CSV"
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  $target: libFuzzer exited $status; the log is $log, the input in $artifacts/:" >&2
        grep -E 'Fatal error|ERROR: |SUMMARY' "$log" | head -5 | sed 's/^/    /' >&2 || true
    fi
done
echo "figures in $FUZZ_CSV"
exit "$failed"
