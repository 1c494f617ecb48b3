#!/usr/bin/env bash
# Fuzzing: SharpFuzz + afl-fuzz over the core's parsers of untrusted input.
#
#   tests/fuzz/run.sh [--seconds N] [--ci] [target ...]
#
# Builds tests/fuzz/NginxOAuth.Fuzz twice (a plain copy for replaying and an
# instrumented one for afl-fuzz: SharpFuzz rewrites NginxOAuth.Core.dll so
# every branch reports to afl's coverage map), writes the seed corpora,
# replays the seeds and the saved regressions, then runs each target for N
# seconds (default 60) and prints executions, corpus growth and crashes per
# target. A crash input is saved to
# tests/NginxOAuth.Core.Tests/FuzzRegressions/<target>/ (FuzzRegressionTests
# replays every file there) and replayed here to print its exception.
# Exit status 1 when any target crashed (a crash afl reports counts when
# its input throws again when replayed). --ci: the bounded run of
# ./build.sh test (no UI, strict time limits, findings kept under build/).
#
# Needs afl-fuzz (Debian: afl++; ./build.sh installs it) and the .NET SDK.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FUZZ="$ROOT/build/fuzz"
PROJECT="$ROOT/tests/fuzz/NginxOAuth.Fuzz"
REGRESSIONS="$ROOT/tests/NginxOAuth.Core.Tests/FuzzRegressions"
SHARPFUZZ_VERSION=2.3.0

seconds=60
ci=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
        --seconds=*) seconds=${1#--seconds=}; shift ;;
        --ci) ci=1; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
case "$seconds" in ''|*[!0-9]*) echo "run.sh: --seconds takes whole seconds" >&2; exit 2 ;; esac
[ "$seconds" -ge 1 ] || { echo "run.sh: --seconds must be at least 1" >&2; exit 2; }

log() { printf '==> %s\n' "$*" >&2; }
command -v afl-fuzz >/dev/null || { echo "run.sh: afl-fuzz not found (apt-get install afl++)" >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# --- build: plain (replay) and instrumented (afl) copies -----------------------
log "fuzz driver (SharpFuzz $SHARPFUZZ_VERSION, instrumenting NginxOAuth.Core.dll)"
mkdir -p "$FUZZ"
rm -rf "$FUZZ/plain" "$FUZZ/afl"
dotnet build "$PROJECT" -c Release -o "$FUZZ/plain" --nologo -v quiet -clp:ErrorsOnly >"$FUZZ/build.log" 2>&1 \
    || { cat "$FUZZ/build.log" >&2; exit 1; }
cp -a "$FUZZ/plain" "$FUZZ/afl"
if [ ! -x "$FUZZ/tools/sharpfuzz" ]; then
    dotnet tool install --tool-path "$FUZZ/tools" SharpFuzz.CommandLine --version "$SHARPFUZZ_VERSION" >/dev/null
fi
# the tool is built for net8/9/10; only the .NET 10 runtime may be installed
DOTNET_ROLL_FORWARD=Major "$FUZZ/tools/sharpfuzz" "$FUZZ/afl/NginxOAuth.Core.dll" >/dev/null
driver_plain=("dotnet" "$FUZZ/plain/NginxOAuth.Fuzz.dll")
driver_afl=("dotnet" "$FUZZ/afl/NginxOAuth.Fuzz.dll")

all=$("${driver_plain[@]}" list | awk '{print $1}')
if [ ${#targets[@]} -eq 0 ]; then
    read -r -a targets <<<"$(echo $all)"
fi
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "run.sh: unknown target '$t' (targets: $(echo $all))" >&2; exit 2; }
done

# --- seeds, and replaying what is already known ---------------------------------
"${driver_plain[@]}" seeds "$FUZZ/seeds" "$ROOT" >"$FUZZ/seeds.log"
failed=()
for t in "${targets[@]}"; do
    dirs=("$FUZZ/seeds/$t")
    [ -d "$REGRESSIONS/$t" ] && dirs+=("$REGRESSIONS/$t")
    if ! "${driver_plain[@]}" replay "$t" "${dirs[@]}" >"$FUZZ/replay-$t.log"; then
        grep '^crash' "$FUZZ/replay-$t.log" >&2 || true
        failed+=("$t (seeds or saved regressions)")
    fi
done

# --- afl-fuzz, one target at a time ---------------------------------------------
# The machine is shared: no CPU binding, no CPU-governor or core-pattern demands
# (a container cannot change them; crashes are exceptions reported through the
# fork server, not core dumps). Seeds that crash are skipped by afl (the replay
# above has reported them). .NET starts in about a second: a long handshake
# timeout; per input 1 s (+: inputs that time out in the dry run are skipped).
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 \
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 AFL_FAST_CAL=1 \
    AFL_FORKSRV_INIT_TMOUT=60000 AFL_NO_WARN_INSTABILITY=1
[ "$ci" = 1 ] && export AFL_BENCH_UNTIL_CRASH=1

stat() { sed -n "s/^$1 *: *//p" "$2" 2>/dev/null | head -1; }

printf '\n%-16s %11s %7s %6s %9s %7s %5s\n' target executions exec/s edges new-cases crashes hangs >"$FUZZ/summary.txt"
for t in "${targets[@]}"; do
    out="$FUZZ/findings/$t"
    rm -rf "$out"
    mkdir -p "$FUZZ/findings"
    log "fuzzing $t for ${seconds}s"
    rc=0
    # -V stops afl after N seconds; timeout is the backstop should it not
    timeout -k 10 $((seconds + 120)) afl-fuzz -i "$FUZZ/seeds/$t" -o "$out" -t 1000+ -m none -V "$seconds" \
        -- "${driver_afl[@]}" run "$t" >"$FUZZ/afl-$t.log" 2>&1 || rc=$?
    stats="$out/default/fuzzer_stats"
    if [ ! -f "$stats" ]; then
        tail -20 "$FUZZ/afl-$t.log" >&2
        failed+=("$t (afl-fuzz did not start, exit $rc; see build/fuzz/afl-$t.log)")
        continue
    fi
    execs=$(stat execs_done "$stats")
    speed=$(stat execs_per_sec "$stats")
    found=$(stat corpus_found "$stats")
    crashes=$(stat saved_crashes "$stats")
    [ -n "$crashes" ] || crashes=$(stat unique_crashes "$stats")
    hangs=$(stat saved_hangs "$stats")
    [ -n "$hangs" ] || hangs=$(stat unique_hangs "$stats")
    edges=$(stat edges_found "$stats")
    printf '%-16s %11s %7s %6s %9s %7s %5s\n' "$t" "$execs" "${speed%.*}" "$edges" "$found" "$crashes" "$hangs" \
        >>"$FUZZ/summary.txt"

    shopt -s nullglob
    inputs=("$out"/default/crashes/id:*)
    shopt -u nullglob
    # A crash counts when it reproduces outside afl: an input that throws
    # again when replayed is saved as a regression test and fails the run.
    # One that does not (afl's fork server killed under load, a timeout
    # at the edge) is reported and kept in build/fuzz for a look.
    if [ ${#inputs[@]} -gt 0 ]; then
        if "${driver_plain[@]}" replay "$t" "${inputs[@]}" >"$FUZZ/replay-found-$t.log" 2>&1; then
            printf '%s: afl reported %s crash(es) that do not reproduce when replayed (inputs in %s)\n' \
                "$t" "${#inputs[@]}" "$out/default/crashes" >&2
        else
            mkdir -p "$REGRESSIONS/$t"
            for f in "${inputs[@]}"; do
                cp "$f" "$REGRESSIONS/$t/$(sha1sum "$f" | cut -c1-16)"
            done
            grep -A4 '^crash' "$FUZZ/replay-found-$t.log" >&2 || true
            failed+=("$t (${#inputs[@]} crash inputs saved to tests/NginxOAuth.Core.Tests/FuzzRegressions/$t/)")
        fi
    fi
done

cat "$FUZZ/summary.txt" >&2
if [ ${#failed[@]} -gt 0 ]; then
    printf '\nfuzzing found crashes:\n' >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
printf '\nfuzzing: %s targets, no crash\n' "${#targets[@]}" >&2
