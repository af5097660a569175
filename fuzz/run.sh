#!/usr/bin/env bash
# Runs fuzz targets for SECONDS each (`make fuzz`, `make test`; see fuzz/README.md):
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target of fuzz/Cargo.toml)
# Each target starts from fuzz/corpus/<target> (filled by `make fuzz-seeds`) plus its
# committed fuzz/regressions/<target>, and keeps what it finds new in fuzz/corpus/<target>.
# A crash, a timeout or an out-of-memory is saved under fuzz/artifacts/<target>/ and makes
# the script exit 1 once every target has run. The last lines print a table of the figures
# fuzz/README.md records (seconds, execs/s, corpus size, findings).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^zarrmount-fuzz$')
fi

# libFuzzer limits, each for one of the bugs the fuzzing is for:
# -timeout: an input taking longer than 10 s is an infinite loop (the slowest seeds take ms);
# -malloc_limit_mb: one allocation of 256 MiB or more is a finding (a size claimed by the
#   input must be checked against the input before anything is allocated for it; the
#   largest input is a few hundred KiB, so no honest decode comes near it);
# -rss_limit_mb: many smaller allocations adding up (the sanitizer's own shadow included).
limits=(-timeout=10 -malloc_limit_mb=256 -rss_limit_mb=2048)

mkdir -p fuzz/logs
failed=()
rows=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    dirs=("fuzz/corpus/$t")
    [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
    log="fuzz/logs/$t.log"
    echo "== $t: ${seconds} s"
    # RUSTC_BOOTSTRAP=1: see the Makefile's fuzz section (ASan's -Zsanitizer on stable).
    if RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1 >"$log" 2>&1; then
        findings=0
    else
        findings=1
        failed+=("$t")
        grep -E -A12 'ERROR: libFuzzer|panicked|SUMMARY' "$log" | head -40
        echo "== $t FAILED: input in fuzz/artifacts/$t/, full log in $log"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    rows+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$t" "${elapsed:-?}" "${runs:-?}" "${execs:-?}" "$corpus" "$findings")")
done

echo
echo "| target | seconds | execs | execs/s | corpus | findings |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}"
    exit 1
fi
