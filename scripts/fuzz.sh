#!/usr/bin/env bash
# Bounded fuzzing of the `contacts` crate with cargo-fuzz (libFuzzer); see fuzz/.
#
#   scripts/fuzz.sh                       # every target, 60 s each
#   scripts/fuzz.sh phone_normalize       # one target
#   FUZZ_SECONDS=300 scripts/fuzz.sh      # longer
#
# Environment:
#   FUZZ_SECONDS    time per target (libFuzzer -max_total_time), default 60
#   FUZZ_SANITIZER  none (default: works on the stable toolchain) or address (needs
#                   nightly, or RUSTC_BOOTSTRAP=1 on stable, which this script then sets;
#                   about 10x slower, and loading a large corpus can outlast FUZZ_SECONDS)
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# The working corpus is fuzz/corpus/<target> (git-ignored, grows between runs), seeded
# read-only from fuzz/seeds/<target>, with the tokens of fuzz/dicts/<target>.dict. A crash
# is saved as fuzz/artifacts/<target>/crash-*; minimise it with
# `cargo fuzz tmin -s none <target> <file>`, copy it to
# tests/fixtures/fuzz-regressions/<target>-<short-name> (replayed by
# `cargo test -p contacts --lib fuzz_regressions`) and fix the bug.
# Exits non-zero when any target found a crash.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
all_targets=(parse_map_validate phone_normalize)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
build=(-s "$sanitizer")
if [ "$sanitizer" != none ]; then
    # Its own target dir, so switching sanitizers does not rebuild everything.
    build+=(--target-dir "fuzz/target/$sanitizer")
    if ! rustc --version | grep -q nightly; then
        # -Zsanitizer is a nightly flag; stable rustc accepts it when bootstrapping.
        export RUSTC_BOOTSTRAP=1
    fi
fi

cargo fuzz build "${build[@]}" || exit 2

status=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    dict=()
    [ -f "fuzz/dicts/$target.dict" ] && dict=(-dict="fuzz/dicts/$target.dict")
    echo "== $target: ${seconds}s (sanitizer: $sanitizer)"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    if ! cargo fuzz run "${build[@]}" "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-}; then
        echo "!! $target found a crash: see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit $status
