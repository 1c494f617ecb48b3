#!/usr/bin/env bash
# Interleaved slices against running bench nginx instances, with the
# worker's CPU time per request from /proc (what docs/PERFORMANCE.md,
# "Profiles", uses to compare two builds or two scenarios on a machine
# whose speed swings: the slices of both sides alternate).
#
#   BENCH_KEEP=1 ./build.sh bench --quick     # keeps /tmp/nginx-oauth-bench.XXXX
#   (cd DIR && nginx -p DIR -c DIR/idp.conf &)     # the IdP, a plain nginx of its own
#   (cd DIR && nginx -p DIR -c DIR/nginx.conf &)   # master_process on in the kept conf
#   bench/ab.sh ROUNDS SECONDS "DIR1 DIR2 ..." scenario...
#
# Prints one line per slice: round, directory, scenario, requests/s, p99,
# worker CPU microseconds per request (user + system), errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 4 ] || { echo "usage: bench/ab.sh ROUNDS SECONDS \"DIR...\" scenario..." >&2; exit 2; }
ROUNDS=$1; SECS=$2; DIRS=$3; shift 3
HZ=$(getconf CLK_TCK)

for r in $(seq 1 "$ROUNDS"); do
    for d in $DIRS; do
        port=$(awk '/listen 127.0.0.1:[0-9]+ backlog/ { sub(/.*:/, "", $2); print $2 + 0 }' "$d/nginx.conf")
        worker=$(pgrep -P "$(cat "$d/nginx.pid")" | head -n 1)
        for s in "$@"; do
            case $s in
                introspect*|exchange*|sts*|auth-request*) t=$(head -n 1 "$d/tokens/tokens-hs256.txt") ;;
                *) t=$(head -n 1 "$d/tokens/tokens-rs256.txt") ;;
            esac
            read -r u0 k0 < <(awk '{ print $14, $15 }' "/proc/$worker/stat")
            read -r _ n dur _ p99 e < <(BENCH_TOKENS="" wrk -t1 -c32 -d"${SECS}s" -H "Authorization: Bearer $t" \
                -s "$ROOT/bench/wrk.lua" "http://127.0.0.1:$port/$s/ok.txt" | awk '/^RESULT/')
            read -r u1 k1 < <(awk '{ print $14, $15 }' "/proc/$worker/stat")
            awk -v r="$r" -v d="$(basename "$d")" -v s="$s" -v n="$n" -v t="$dur" -v p="$p99" -v e="$e" \
                -v c=$((u1 - u0 + k1 - k0)) -v hz="$HZ" 'BEGIN {
                printf "%d %s %-30s %7.0f req/s  p99 %6.1f ms  cpu %6.1f us/req  errors %d\n",
                       r, d, s, n / (t / 1e6), p / 1000, c * 1e6 / hz / n, e }'
        done
    done
done
