#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for a bounded time, then says what each found.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default: FUZZ_SECONDS in all, see below)
#   scripts/fuzz.sh --merge [SECONDS]        (the same, then adds to fuzz/seeds/ the inputs
#                                             that reach code the seeds do not: commit them)
#   scripts/fuzz.sh --quick [SECONDS]        (a build that is ready in minutes: what .ci/run
#                                             uses, see below)
#   scripts/fuzz.sh [--quick] --build-only   (installs and builds, then stops)
#
# Installs cargo-fuzz (pinned, into target/tools) when it is missing, builds every target
# once (stable Rust with RUSTC_BOOTSTRAP=1: cargo-fuzz passes -Zsanitizer=address and other
# unstable flags), gathers a sample of the conformance cases when XNPU_ONNX_CASES (and
# XNPU_CONTRIB_CASES, XNPU_LLM_MODELS) are set (target/fuzz-work/extra/<seed folder>, hard
# links where it can), and runs each target for a bounded time (-max_total_time),
# FUZZ_JOBS at a time, over a fresh work corpus (target/fuzz-work/corpus/<target>, where
# libFuzzer adds what it finds, starting with a copy of every crash ever kept for the
# target, fuzz/regressions/<target>/) and, read only, the committed seeds
# (fuzz/seeds/<seed folder>) and that sample. libFuzzer runs every one of those inputs
# before it mutates any, so each run is also a replay of the kept crashes and the seeds.
#
# Two builds. The default (target/fuzz) is cargo-fuzz's: release, debug assertions and
# overflow checks, AddressSanitizer: the one to fuzz with for hours, ~13 minutes to build
# from nothing on 2 cores. --quick (target/fuzz-quick) builds in the dev profile at
# opt-level 1 (the largest dependencies fuzzing barely runs at 0: fuzz/Cargo.toml) without a
# sanitizer: debug assertions and overflow checks still on, ~2.5 minutes from nothing, and
# as many executions per second as a release build without ASan; it misses memory errors that do not crash, which only unsafe code can make (the
# plugin ABI), so fuzz plugin_abi with the default build after a change there.
#
# Prints one line per target: executions (libFuzzer's stat::number_of_executed_units) and
# what was found. A crash, a timeout (an input over 10 s), an allocation over 2 GiB or a
# leak is saved to fuzz/regressions/<target>/ (commit it: the replay test
# fuzz/tests/regressions.rs keeps it) and the script exits 1, except a crash matching a
# line of fuzz/regressions/known_open.txt (a bug already kept, not fixed yet): that is
# reported, and the target fuzzes on for the rest of its time.
#
# Environment: FUZZ_SECONDS (fuzzing time in all, default 84), FUZZ_JOBS (targets at once,
# default 2, at most the CPUs), FUZZ_SEEDS_MAX (conformance files per seed folder, default
# 500 of the ~2000 ONNX models; the sample moves each day), FUZZ_KEEP (keep the work corpora, which otherwise go when
# nothing was found), XNPU_ONNX_CASES, XNPU_CONTRIB_CASES, XNPU_LLM_MODELS.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"

CARGO_FUZZ_VERSION=0.13.2

merge=0
quick=0
build_only=0
while [ $# -gt 0 ]; do
    case "$1" in
    --merge) merge=1 ;;
    --quick) quick=1 ;;
    --build-only) build_only=1 ;;
    *) break ;;
    esac
    shift
done

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

cpus=$(nproc 2>/dev/null || echo 1)
jobs="${FUZZ_JOBS:-2}"
[ "$jobs" -le "$cpus" ] || jobs=$cpus
[ "$jobs" -ge 1 ] || jobs=1
total="${FUZZ_SECONDS:-84}"
rounds=$(((${#targets[@]} + jobs - 1) / jobs))
secs="${1:-$((total / rounds))}"
case "$secs" in
'' | *[!0-9]* | 0)
    echo "usage: scripts/fuzz.sh [--merge] [--quick] [--build-only] [SECONDS_PER_TARGET]" >&2
    exit 2
    ;;
esac

t0=$(date +%s)
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export RUSTC_BOOTSTRAP=1
tools="$REPO/target/tools"
export PATH="$tools/bin:$PATH"
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into target/tools"
    if ! env -u CARGO_TARGET_DIR cargo install --locked --quiet --root "$tools" \
        --version "$CARGO_FUZZ_VERSION" cargo-fuzz; then
        log "fuzzing: cannot install cargo-fuzz" >&2
        exit 1
    fi
fi

# Incremental builds: after a change to xnpu's crates only what changed is compiled again
# (seconds, where a non-incremental build compiles every crate from the changed one up).
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$quick" -eq 1 ]; then
    # The dev profile (debug assertions, overflow checks, line tables: fuzz/Cargo.toml) at
    # opt-level 1; coverage instrumentation without a sanitizer.
    log "building the fuzz targets (quick: dev profile at opt-level 1, no sanitizer; target/fuzz-quick)"
    build=(env CARGO_PROFILE_DEV_OPT_LEVEL=1 cargo fuzz build --dev --sanitizer none
        --target-dir "$REPO/target/fuzz-quick")
    bin="$REPO/target/fuzz-quick/$host/debug"
else
    # Release with debug assertions and overflow checks, AddressSanitizer (cargo-fuzz's
    # defaults); 16 codegen units build in a fraction of the time of 1.
    log "building the fuzz targets (release, AddressSanitizer; target/fuzz)"
    build=(env CARGO_PROFILE_RELEASE_INCREMENTAL=true cargo fuzz build --codegen-units 16
        --target-dir "$REPO/target/fuzz")
    bin="$REPO/target/fuzz/$host/release"
fi
if ! "${build[@]}" --fuzz-dir fuzz --target "$host"; then
    log "fuzzing: the fuzz targets do not build" >&2
    exit 1
fi
t1=$(date +%s)
if [ "$build_only" -eq 1 ]; then
    log "fuzz targets installed and built in $((t1 - t0)) s (${bin#"$REPO"/})"
    exit 0
fi

work="$REPO/target/fuzz-work"
rm -rf "$work/corpus" "$work/extra" "$work/artifacts" "$work/logs" "$work/results" "$work/tmp"
mkdir -p "$work/logs" "$work/results" "$work/tmp"
# The genai_config target writes its files into the temporary folder.
export TMPDIR="$work/tmp"
# One thread per fuzzing process: FUZZ_JOBS processes share the CPUs.
export RAYON_NUM_THREADS=1
export RUST_BACKTRACE=1

seeds_max="${FUZZ_SEEDS_MAX:-500}"
day=$(($(date +%s) / 86400))

# At most $seeds_max of the files listed on stdin (sorted, evenly spread over the list,
# starting at an offset that moves each day) into folder $1, as hard links where they can
# be (no copy of the bytes), else copies.
sample_into() {
    local dest="$1" list n step i f name
    mapfile -t list < <(sort)
    n=${#list[@]}
    [ "$n" -gt 0 ] || return 0
    step=$(((n + seeds_max - 1) / seeds_max))
    i=$((day % step))
    while [ "$i" -lt "$n" ]; do
        f="${list[$i]}"
        name="${f#"$REPO"/}"
        name="${name#/}"
        ln "$f" "$dest/c-${name//\//_}" 2>/dev/null || cp "$f" "$dest/c-${name//\//_}"
        i=$((i + step))
    done
}

# Fills folder $1 with the conformance inputs for seed folder $2 (of at most $3 bytes).
extra() {
    local corpus="$1" folder="$2" max="$3" d out
    mkdir -p "$corpus"
    case "$folder" in
    onnx)
        # Not the light/ models: their weights are made at import (ConstantOfShape), so
        # their passes fold hundreds of MB.
        find ${XNPU_ONNX_CASES:+"$XNPU_ONNX_CASES"} ${XNPU_CONTRIB_CASES:+"$XNPU_CONTRIB_CASES"} \
            tests/fixtures models -name '*.onnx' -size -"$((max + 1))"c -not -path '*/light/*' \
            2>/dev/null | sample_into "$corpus"
        ;;
    npy)
        find models tests/fixtures -name '*.npy' -size -"$((max + 1))"c 2>/dev/null |
            sample_into "$corpus"
        ;;
    genai_config)
        # genai_config.json, a NUL, tokenizer.json: the target's input.
        for d in ${XNPU_LLM_MODELS:+"$XNPU_LLM_MODELS"/*/}; do
            [ -f "$d/genai_config.json" ] && [ -f "$d/tokenizer.json" ] || continue
            out="$corpus/c-llm-$(basename "$d")"
            { cat "$d/genai_config.json"; printf '\0'; cat "$d/tokenizer.json"; } >"$out"
            [ "$(stat -c %s "$out")" -le "$max" ] || rm -f "$out"
        done
        ;;
    esac
}

# The part of report $1 that names the crash: the panic's place and message, else the
# stack frames.
headline() {
    if grep -a -q 'panicked at' "$1"; then
        grep -a -A1 'panicked at' "$1" | head -4
    else
        grep -a -E '^ *#[0-9]+ 0x[0-9a-f]+ in ' "$1" | head -60
    fi
}

# The signature of known_open.txt that report $2 of target $1 matches, if any.
known_signature() {
    local target="$1" report="$2" file sig
    [ -f fuzz/regressions/known_open.txt ] || return 1
    while read -r file sig; do
        case "$file" in '' | '#'*) continue ;; esac
        [ "${file%%/*}" = "$target" ] && [ -n "$sig" ] || continue
        if headline "$report" | grep -a -qF -- "$sig"; then
            echo "$file"
            return 0
        fi
    done <fuzz/regressions/known_open.txt
    return 1
}

# Fuzzes target $1 (seed folder $2, inputs of at most $3 bytes) for $secs seconds; writes
# its summary line to $work/results/$1 and, for a new crash, "new" to $work/results/$1.new.
fuzz_target() {
    local target="$1" folder="$2" max="$3"
    local corpus="$work/corpus/$target" artifacts="$work/artifacts/$target"
    local deadline=$(($(date +%s) + secs)) execs=0 runs=0 known=() what="" saved=""
    local log_file n rc left artifact report k
    mkdir -p "$corpus" "$artifacts"
    # Every crash ever kept for this target runs first (libFuzzer runs its inputs before it
    # mutates any): a copy, so that a known-open one can be dropped below.
    if [ -d "fuzz/regressions/$target" ]; then
        cp fuzz/regressions/"$target"/* "$corpus"/ 2>/dev/null
    fi
    while :; do
        left=$((deadline - $(date +%s)))
        [ "$left" -ge 1 ] || break
        runs=$((runs + 1))
        log_file="$work/logs/$target.$runs.log"
        rm -f "$artifacts"/*
        "$bin/$target" "$corpus" "fuzz/seeds/$folder" "$work/extra/$folder" \
            -max_total_time="$left" -max_len="$max" \
            -rss_limit_mb=2048 -timeout=10 -close_fd_mask=1 -print_final_stats=1 \
            -artifact_prefix="$artifacts/" >"$log_file" 2>&1
        rc=$?
        n=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log_file" | grep -a -o '[0-9]*$' | tail -1)
        execs=$((execs + ${n:-0}))
        [ "$rc" -eq 0 ] && break
        artifact=$(find "$artifacts" -type f | head -1)
        if [ -z "$artifact" ]; then
            what="exit status $rc and no reproducer (see ${log_file#"$REPO"/})"
            break
        fi
        report="$log_file"
        if k=$(known_signature "$target" "$report"); then
            # Fuzz on; an input of the corpus or the sample that crashes this way is dropped
            # first (the seeds never crash: the replay test checks).
            known+=("$k")
            local sum f
            sum=$(sha1sum "$artifact" | cut -d' ' -f1)
            for f in "$corpus"/* "$work/extra/$folder"/*; do
                [ "$(sha1sum "$f" | cut -d' ' -f1)" = "$sum" ] && rm -f "$f"
            done
            [ "$runs" -lt 50 ] && continue
            break
        fi
        if grep -a -q 'ERROR: libFuzzer: timeout' "$report"; then
            what="TIMEOUT (an input over 10 s)"
        elif grep -a -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$report"; then
            what="OUT OF MEMORY ($(grep -a -m1 -oE 'ERROR: libFuzzer: (out-of-memory|malloc)[^)]*\)?' "$report" | sed 's/ERROR: libFuzzer: //'))"
        elif grep -a -q 'ERROR: LeakSanitizer' "$report"; then
            what="LEAK"
        elif grep -a -q 'panicked at' "$report"; then
            what="PANIC at $(grep -a -m1 -A1 'panicked at' "$report" | sed 's/^.*panicked at //' | tr '\n' ' ' | cat -v)"
        elif grep -a -q 'ERROR: AddressSanitizer' "$report"; then
            what="$(grep -a -m1 -o 'ERROR: AddressSanitizer: .*' "$report")"
        else
            what="$(grep -a -m1 -o 'ERROR: libFuzzer: .*' "$report" || echo "exit status $rc")"
        fi
        mkdir -p "fuzz/regressions/$target"
        cp "$artifact" "fuzz/regressions/$target/"
        saved="fuzz/regressions/$target/$(basename "$artifact")"
        {
            echo "== $target: $what"
            echo "   reproducer: $saved; report: ${report#"$REPO"/}"
            headline "$report" | head -30 | cat -v | sed 's/^/   /'
        } >"$work/results/$target.new"
        break
    done
    local line
    line="$(printf '%-16s %9s execs in %3d s' "$target" "$execs" "$secs")"
    if [ -n "$what" ]; then
        line="$line  FOUND: $what${saved:+ -> $saved}"
    elif [ ${#known[@]} -gt 0 ]; then
        line="$line  nothing new (known open, hit ${#known[@]}x: $(printf '%s\n' "${known[@]}" | sort -u | tr '\n' ' '))"
    else
        line="$line  nothing found"
    fi
    echo "$line" >"$work/results/$target"
}

for folder in $(printf '%s\n' "${targets[@]}" | awk '{print $2 " " $3}' | sort -u | tr ' ' ':'); do
    extra "$work/extra/${folder%%:*}" "${folder%%:*}" "${folder##*:}"
done
log "fuzzing ${#targets[@]} targets, $secs s each, $jobs at a time" \
    "($(find "$work/extra" -type f | wc -l) conformance inputs besides the seeds)"
for row in "${targets[@]}"; do
    read -r target folder max <<<"$row"
    fuzz_target "$target" "$folder" "$max" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n
    done
done
wait
t2=$(date +%s)

if [ "$merge" -eq 1 ]; then
    log "adding inputs that reach new code to fuzz/seeds/"
    for row in "${targets[@]}"; do
        read -r target folder max <<<"$row"
        before=$(find "fuzz/seeds/$folder" -type f | wc -l)
        "$bin/$target" -merge=1 -max_len="$max" -rss_limit_mb=2048 -timeout=10 -close_fd_mask=1 \
            "fuzz/seeds/$folder" "$work/corpus/$target" "$work/extra/$folder" \
            >"$work/logs/$target.merge.log" 2>&1
        log "$target: $(($(find "fuzz/seeds/$folder" -type f | wc -l) - before)) new seeds in fuzz/seeds/$folder"
    done
fi

found=0
echo
for row in "${targets[@]}"; do
    read -r target _ <<<"$row"
    if [ -f "$work/results/$target" ]; then
        cat "$work/results/$target"
    else
        printf '%-16s did not run\n' "$target"
        found=1
    fi
done
for row in "${targets[@]}"; do
    read -r target _ <<<"$row"
    if [ -f "$work/results/$target.new" ]; then
        found=1
        echo
        cat "$work/results/$target.new"
    fi
done
# The work corpora (thousands of small files) go unless something was found or FUZZ_KEEP is
# set; the logs and results stay.
if [ "$found" -eq 0 ] && [ -z "${FUZZ_KEEP:-}" ]; then
    rm -rf "$work/corpus" "$work/extra" "$work/artifacts" "$work/tmp"
fi
t3=$(date +%s)
log "fuzzing: $((t3 - t0)) s (install and build $((t1 - t0)) s, fuzzing $((t2 - t1)) s);" \
    "logs in target/fuzz-work/logs/"
if [ "$found" -ne 0 ]; then
    log "fuzzing found crashes: reproduce with ${bin#"$REPO"/}/<target> <file>;" \
        "commit fuzz/regressions/ (the replay test keeps each), and fix or list it in" \
        "fuzz/regressions/known_open.txt" >&2
    exit 1
fi
