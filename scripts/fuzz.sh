#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET]
# (default 12: seven targets, about 90 s in all once built).
#
# Installs cargo-fuzz when it is missing, builds every target once (stable Rust with
# RUSTC_BOOTSTRAP=1: cargo-fuzz passes -Zsanitizer and friends), seeds each corpus
# (fuzz/corpus/<target>) from the committed seeds (fuzz/seeds/) and a bounded sample of the
# conformance cases, models and fixtures present on this machine, then runs each target in
# turn, one process each (-jobs=1). Prints one line per target: executions, and what was
# found. Exits non-zero when any target found a crash, a leak, a timeout or an allocation
# over the limit; its reproducer is kept in fuzz/artifacts/<target>/ and the log in
# fuzz/logs/<target>.log. Copy a reproducer to fuzz/regressions/<target>/ so that the
# replay test (cargo test --manifest-path fuzz/Cargo.toml --no-default-features) keeps it.
#
# Environment: XNPU_ONNX_CASES, XNPU_CONTRIB_CASES, XNPU_LLM_MODELS (where the conformance
# cases and language models are; default target/onnx-cases, target/contrib-cases,
# target/llm), FUZZ_SEEDS_MAX (files of conformance seeds per corpus, default 300).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"

secs="${1:-12}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
    exit 2
    ;;
esac
[ "$secs" -ge 1 ] || secs=1

# Target, its committed seed folder (fuzz/seeds/<folder>) and its largest input in bytes.
targets=(
    "onnx_import onnx 32768"
    "shape_inference onnx 32768"
    "passes onnx 32768"
    "session onnx 32768"
    "npy npy 8192"
    "genai_config genai_config 65536"
    "plugin_abi plugin_abi 4096"
)

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz || exit 1
fi

# Release with debug assertions and overflow checks, AddressSanitizer (cargo-fuzz's
# defaults); 16 codegen units build the workspace in a few minutes instead of many.
log "building the fuzz targets"
if ! cargo fuzz build --codegen-units 16; then
    log "the fuzz targets do not build" >&2
    exit 1
fi
bin="${CARGO_TARGET_DIR:-$REPO/fuzz/target}/x86_64-unknown-linux-gnu/release"

cases="${XNPU_ONNX_CASES:-$REPO/target/onnx-cases}"
contrib="${XNPU_CONTRIB_CASES:-$REPO/target/contrib-cases}"
llm="${XNPU_LLM_MODELS:-$REPO/target/llm}"
seeds_max="${FUZZ_SEEDS_MAX:-300}"

# At most $seeds_max of the files listed on stdin (sorted; evenly spread over the list) into
# corpus folder $1, named after their paths; files already there are kept.
sample_into() {
    local dest="$1" list n step i=0
    mapfile -t list < <(sort)
    n=${#list[@]}
    [ "$n" -gt 0 ] || return 0
    step=$(((n + seeds_max - 1) / seeds_max))
    while [ "$i" -lt "$n" ]; do
        local f="${list[$i]}"
        local name="seed-${f#"$REPO"/}"
        cp -n "$f" "$dest/${name//\//_}" 2>/dev/null
        i=$((i + step))
    done
}

# Seeds corpus folder $2 of target $1 (seed folder $3, inputs of at most $4 bytes).
seed() {
    local target="$1" corpus="$2" folder="$3" max="$4"
    mkdir -p "$corpus"
    cp -n "fuzz/seeds/$folder"/* "$corpus"/ 2>/dev/null
    case "$folder" in
    onnx)
        find "$cases" "$contrib" tests/fixtures models -name '*.onnx' -size -"$((max + 1))"c \
            2>/dev/null | sample_into "$corpus"
        ;;
    npy)
        find models tests/fixtures -name '*.npy' -size -"$((max + 1))"c 2>/dev/null |
            sample_into "$corpus"
        ;;
    genai_config)
        # genai_config.json, a NUL, tokenizer.json: the target's input format.
        local d
        for d in "$llm"/*/; do
            [ -f "$d/genai_config.json" ] && [ -f "$d/tokenizer.json" ] || continue
            local out
            out="$corpus/seed-llm-$(basename "$d")"
            [ -e "$out" ] && continue
            { cat "$d/genai_config.json"; printf '\0'; cat "$d/tokenizer.json"; } >"$out.tmp"
            if [ "$(stat -c %s "$out.tmp")" -le "$max" ]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
        done
        ;;
    plugin_abi)
        # Case 1 (a capability table as describe returns it): the fixtures' tables.
        local t
        for t in tests/fixtures/tables/*.json; do
            [ -f "$t" ] || continue
            local out
            out="$corpus/seed-table-$(basename "$t" .json)"
            [ -e "$out" ] || { printf '\001'; cat "$t"; } >"$out"
        done
        ;;
    esac
}

mkdir -p fuzz/logs
found=0
start=$(date +%s)
summary=()
for row in "${targets[@]}"; do
    read -r target folder max <<<"$row"
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    log_file="fuzz/logs/$target.log"
    seed "$target" "$corpus" "$folder" "$max"
    mkdir -p "$artifacts"
    log "$target: $secs s ($(find "$corpus" -type f | wc -l) corpus files)"
    RUST_BACKTRACE=1 "$bin/$target" "$corpus" \
        -max_total_time="$secs" -max_len="$max" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log_file" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log_file" | grep -o '[0-9]*$' | tail -1)
    [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log_file" | tail -1 | tr -d '#')
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log_file" | tail -1 | sed 's/Test unit written to //')
    what=""
    if grep -q 'ERROR: libFuzzer: timeout' "$log_file"; then
        what="TIMEOUT (over 10 s)"
    elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log_file"; then
        what="OUT OF MEMORY ($(grep -m1 -o 'out-of-memory ([^)]*)' "$log_file"))"
    elif grep -q 'ERROR: LeakSanitizer' "$log_file"; then
        what="LEAK"
    elif grep -q 'panicked at' "$log_file"; then
        what="PANIC at $(grep -m1 -A1 'panicked at' "$log_file" | sed 's/^.*panicked at //' | tr '\n' ' ')"
    elif grep -q 'ERROR: AddressSanitizer' "$log_file"; then
        what="$(grep -m1 -o 'ERROR: AddressSanitizer: [^ ]*.*' "$log_file")"
    elif grep -q 'ERROR: libFuzzer' "$log_file"; then
        what="$(grep -m1 -o 'ERROR: libFuzzer: .*' "$log_file")"
    elif [ "$rc" -ne 0 ]; then
        what="exit status $rc (see $log_file)"
    fi
    if [ -n "$what" ] || [ "$rc" -ne 0 ]; then
        found=1
        line="$(printf '%-16s %10s execs  FOUND: %s' "$target" "${execs:-?}" "$what")"
        [ -n "$artifact" ] && line="$line; reproducer $artifact"
    else
        line="$(printf '%-16s %10s execs  nothing found' "$target" "${execs:-?}")"
    fi
    summary+=("$line")
    echo "$line"
done

echo
log "fuzzing: $(($(date +%s) - start)) s, $secs s per target (logs in fuzz/logs/)"
printf '%s\n' "${summary[@]}"
if [ "$found" -ne 0 ]; then
    log "found crashes: reproduce with \"$bin/<target> <file>\"; keep each in fuzz/regressions/<target>/" >&2
    exit 1
fi
