#!/usr/bin/env bash
# Side by side with the C anchor (kjdev/nginx-auth-oauth2-token): token
# introspection without a cache, our module against the anchor, on the
# same machine, in the same run.  The anchor is not part of this
# repository: build it yourself as a dynamic module for the nginx you run
# (docs/PERFORMANCE.md, "Side by side with the C anchor") and point
# ANCHOR_MODULE at the .so:
#
#   ANCHOR_MODULE=/path/ngx_http_auth_oauth2_token_module.so bench/anchor.sh [--quick | --callgrind]
#
# Our module comes from build/modules (./build.sh first).  Both modules
# define the same directive names, so they cannot share one nginx.
# Topology, loopback only, every process a child of this script:
#
#   IdP        a plain nginx (no module), one worker, a fixed JSON answer
#              {"active":true,...} for POST or GET /introspect
#   anchor     nginx + the anchor's module, one worker
#   ours       nginx + our module, one worker
#
# The two gateways get the same configuration text but for the
# load_module line and the port.  Locations (a static file served in the
# content phase after the access phase, as in bench/run.sh):
#
#   baseline                        no authentication
#   introspect-nocache              auth_oauth2_token_introspect on, no
#                                   cache, through an internal location
#                                   written as the anchor's README writes
#                                   it: proxy_pass http://127.0.0.1:IDP/...
#                                   (HTTP/1.0, a new connection per call)
#   introspect-nocache-keepalive    the same through an upstream{} with
#                                   keepalive, proxy_http_version 1.1 and
#                                   proxy_set_header Connection ""
#   auth-request-nocache            nginx's own auth_request to the first
#                                   internal location (a GET subrequest,
#                                   nothing parsed): the floor of any
#                                   module that asks an IdP per request
#   auth-request-nocache-keepalive  auth_request to the keepalive location
#
# Measurement (the approach of bench/run.sh): wrk, one thread, one
# gateway under load at a time.  Every slice of a scenario is followed by
# a 1 s baseline slice of the same gateway; a slice's ratio is its req/s
# divided by the mean of that gateway's baseline slices just before and
# just after it.  The two gateways' slices of a scenario alternate (which
# goes first alternates too), so the pair of slices was taken within a
# few seconds.  Printed per gateway and scenario: median req/s, median
# p99, median ratio to the baseline, the worker's CPU time per request
# (user + system from /proc, over all slices), errors (non-2xx, socket);
# and per scenario ours/anchor: the median over slice pairs of the ratio
# of the x-baseline ratios, of the req/s, and the CPU per request.
#
#   --quick       one 2 s slice per scenario and gateway
#   (default)     two rounds of three 2 s slices per scenario and gateway
#   --callgrind   each gateway in turn under valgrind --tool=callgrind
#                 (master_process off): instructions per request of the
#                 gateway process (the IdP is not counted)
#
# Environment: ANCHOR_MODULE (required), NGINX_BIN (/usr/sbin/nginx),
# BENCH_CONNECTIONS (32), BENCH_CALLGRIND_REQUESTS (200), BENCH_KEEP=1
# (keep the work directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES="$ROOT/build/modules"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
CALLGRIND_REQUESTS=${BENCH_CALLGRIND_REQUESTS:-200}

MODE=full
case "${1:-}" in
    --quick) MODE=quick ;;
    --callgrind) MODE=callgrind ;;
    "") ;;
    *) echo "bench/anchor.sh: unknown option '$1' (--quick | --callgrind)" >&2; exit 2 ;;
esac
if [ "$MODE" = quick ]; then
    ROUNDS=1; SLICES=1; DURATION=2; BASE_DURATION=1; WARMUP=1
else
    ROUNDS=2; SLICES=3; DURATION=2; BASE_DURATION=1; WARMUP=2
fi

BENCH_TAG=bench/anchor.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -n "${ANCHOR_MODULE:-}" ] \
    || die "set ANCHOR_MODULE to the anchor's ngx_http_auth_oauth2_token_module.so (docs/PERFORMANCE.md, \"Side by side with the C anchor\")"
[ -f "$ANCHOR_MODULE" ] || die "no file $ANCHOR_MODULE"
[ -f "$MODULES/ngx_http_oauth_module.so" ] || die "no module in $MODULES (run ./build.sh)"
command -v curl >/dev/null 2>&1 || die "curl is missing"
if [ "$MODE" = callgrind ]; then
    command -v valgrind >/dev/null 2>&1 || die "valgrind is missing (apt-get install valgrind)"
else
    command -v wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"
fi

bench_workdir anchor "${BENCH_KEEP:-0}"

# private copies: a build running meanwhile rewrites build/modules in place
mkdir -p "$WORK/ours" "$WORK/anchor" "$WORK/www"
cp "$MODULES/ngx_http_oauth_module.so" "$MODULES/ngx_http_oauth_managed.so" "$WORK/ours/"
cp "$ANCHOR_MODULE" "$WORK/anchor/ngx_http_auth_oauth2_token_module.so"
printf 'ok\n' > "$WORK/www/ok.txt"
chmod -R a+rX "$WORK"

# an opaque bearer token of a common access-token length (both modules
# send it to the IdP as it is)
TOKEN=$(head -c 192 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')

IDP_PORT=$(free_port)
declare -A PORT=([anchor]=$(free_port) [ours]=$(free_port))
declare -A LOAD=(
    [anchor]="load_module $WORK/anchor/ngx_http_auth_oauth2_token_module.so;"
    [ours]="load_module $WORK/ours/ngx_http_oauth_module.so;"
)
GATEWAYS=(anchor ours)
SCENARIOS=(baseline introspect-nocache introspect-nocache-keepalive
    auth-request-nocache auth-request-nocache-keepalive)

# ---- configurations ----------------------------------------------------------
EXP=$(( $(date +%s) + 86400 ))
bench_idp_config "$WORK/idp.conf"

write_gateway() {   # name master_process
    cat > "$WORK/$1.conf" <<EOF
${LOAD[$1]}
worker_processes 1;
master_process $2;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    auth_oauth2_token_client_id bench;
    auth_oauth2_token_client_secret bench-secret;

    upstream bench_idp { server 127.0.0.1:$IDP_PORT; keepalive 16; }

    server {
        listen 127.0.0.1:${PORT[$1]} backlog=4096;

        location = /_introspect { internal; proxy_pass http://127.0.0.1:$IDP_PORT/introspect; }
        location = /_introspect_ka {
            internal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://bench_idp/introspect;
        }

        location /baseline/ { alias $WORK/www/; }
        location /introspect-nocache/ {
            auth_oauth2_token_introspect on;
            auth_oauth2_token_introspect_endpoint /_introspect;
            alias $WORK/www/;
        }
        location /introspect-nocache-keepalive/ {
            auth_oauth2_token_introspect on;
            auth_oauth2_token_introspect_endpoint /_introspect_ka;
            alias $WORK/www/;
        }
        location /auth-request-nocache/ { auth_request /_introspect; alias $WORK/www/; }
        location /auth-request-nocache-keepalive/ { auth_request /_introspect_ka; alias $WORK/www/; }
    }
}
EOF
}

url_of() { echo "http://127.0.0.1:${PORT[$1]}/$2/ok.txt"; }   # gateway scenario

wait_port() {   # port log pid
    local _
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        kill -0 "$3" 2>/dev/null || die "nginx exited (its error above or in $2; BENCH_KEEP=1 keeps it)"
        sleep 0.1
    done
    die "nothing answers on port $1 (see $2; BENCH_KEEP=1 keeps it)"
}

status_of() {   # url [header]
    if [ $# -gt 1 ]; then
        curl -s -o /dev/null -w '%{http_code}' -H "$2" "$1" || true
    else
        curl -s -o /dev/null -w '%{http_code}' "$1" || true
    fi
}

# every scenario answers 200 with the token; the introspection ones 401
# without it (the module is really on)
check_gateway() {   # gateway
    local s st
    for s in "${SCENARIOS[@]}"; do
        st=$(status_of "$(url_of "$1" "$s")" "Authorization: Bearer $TOKEN")
        [ "$st" = 200 ] || die "$1: $s answers $st with a token, not 200 (see $WORK/$1-error.log; BENCH_KEEP=1 keeps it)"
        case $s in
            introspect-*)
                st=$(status_of "$(url_of "$1" "$s")")
                [ "$st" = 401 ] || die "$1: $s answers $st without a token, not 401"
                ;;
        esac
    done
}

"$NGINX_BIN" -p "$WORK" -c "$WORK/idp.conf" &
PIDS+=("$!")
wait_port "$IDP_PORT" "$WORK/idp-error.log" "$!"

# ---- callgrind mode -----------------------------------------------------------
if [ "$MODE" = callgrind ]; then
    declare -A IR
    for g in "${GATEWAYS[@]}"; do
        write_gateway "$g" off
        log "$g under valgrind --tool=callgrind (slow start)"
        # The .NET GC reserves 256 GiB of address space unless RLIMIT_AS
        # is set, which valgrind refuses (see docs/PERFORMANCE.md)
        (
            ulimit -v 16000000
            exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind-$g.out.%p" \
                --dump-instr=no --collect-atstart=yes \
                "$NGINX_BIN" -p "$WORK" -c "$WORK/$g.conf" >"$WORK/valgrind-$g.log" 2>&1
        ) &
        VG=$!
        PIDS+=("$VG")
        for _ in $(seq 1 600); do
            curl -s -m 5 -o /dev/null "$(url_of "$g" baseline)" && break
            kill -0 "$VG" 2>/dev/null || { tail -n 30 "$WORK/valgrind-$g.log" "$WORK/$g-error.log" >&2; die "$g under valgrind exited"; }
            sleep 0.5
        done
        check_gateway "$g"
        for s in "${SCENARIOS[@]}"; do
            cfg="$WORK/curl-$g-$s.cfg"
            : > "$cfg"
            for i in $(seq 1 "$CALLGRIND_REQUESTS"); do
                [ "$i" -gt 1 ] && echo "next" >> "$cfg"
                printf 'url = "%s"\noutput = /dev/null\nheader = "Authorization: Bearer %s"\n' \
                    "$(url_of "$g" "$s")" "$TOKEN" >> "$cfg"
            done
            callgrind_control -z "$VG" >/dev/null 2>&1 || die "callgrind_control -z failed"
            curl -s -K "$cfg" >/dev/null
            callgrind_control -d "$s" "$VG" >/dev/null 2>&1 || die "callgrind_control -d failed"
            sleep 0.5
            dump=$(ls -t "$WORK"/callgrind-"$g".out.* | head -n 1)
            ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
            IR[$g:$s]=$(( ${ir:-0} / CALLGRIND_REQUESTS ))
        done
        kill "$VG" 2>/dev/null || true
        wait "$VG" 2>/dev/null || true
    done
    printf '\n%-32s %18s %18s %12s\n' scenario "anchor instr/req" "ours instr/req" "ours/anchor"
    for s in "${SCENARIOS[@]}"; do
        awk -v s="$s" -v a="${IR[anchor:$s]}" -v o="${IR[ours:$s]}" \
            'BEGIN { printf "%-32s %18d %18d %12.2f\n", s, a, o, (a > 0) ? o / a : 0 }'
    done
    exit 0
fi

# ---- wrk mode -------------------------------------------------------------------
declare -A WORKER
for g in "${GATEWAYS[@]}"; do
    write_gateway "$g" on
    "$NGINX_BIN" -p "$WORK" -c "$WORK/$g.conf" &
    PIDS+=("$!")
    wait_port "${PORT[$g]}" "$WORK/$g-error.log" "$!"
    check_gateway "$g"
    WORKER[$g]=$(pgrep -P "$(cat "$WORK/$g.pid")" | head -n 1)
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# one wrk run; appends "round slice rps p99_us errors requests ticks tag"
# to $WORK/runs-GATEWAY-SCENARIO.txt (tag: the scenario a baseline slice
# follows) and leaves the rate in LAST_RPS
measure() {   # gateway scenario seconds round slice [tag]
    local t0 t1 reqs dur p99 errs
    t0=$(cpu_ticks "${WORKER[$1]}")
    read -r _ reqs dur _ p99 errs < <(BENCH_TOKENS="" wrk -t1 -c"$CONNECTIONS" -d"${3}s" \
        -H "Authorization: Bearer $TOKEN" -s "$ROOT/bench/wrk.lua" "$(url_of "$1" "$2")" | awk '/^RESULT/') || true
    [ "${reqs:-0}" -gt 0 ] || die "wrk measured no request on $1 $2 (see $WORK/$1-error.log; BENCH_KEEP=1 keeps it)"
    t1=$(cpu_ticks "${WORKER[$1]}")
    LAST_RPS=$(awk -v r="$reqs" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    echo "$4 $5 $LAST_RPS $p99 $errs $reqs $((t1 - t0)) ${6:-$2}" >> "$WORK/runs-$1-$2.txt"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for g in "${GATEWAYS[@]}"; do
    for s in "${SCENARIOS[@]}"; do : > "$WORK/runs-$g-$s.txt"; done
done
: > "$WORK/ratios.txt"   # gateway scenario round slice ratio

log "$ROUNDS round(s), ${#SCENARIOS[@]} scenarios, $SLICES slice(s) of ${DURATION}s per gateway, a ${BASE_DURATION}s baseline slice of the same gateway after each"
declare -A BEFORE
for g in "${GATEWAYS[@]}"; do
    measure "$g" baseline "$WARMUP" 0 0
    measure "$g" baseline "$BASE_DURATION" 0 0
    BEFORE[$g]=$LAST_RPS
done
for round in $(seq 1 "$ROUNDS"); do
    for s in "${SCENARIOS[@]}"; do
        [ "$s" = baseline ] && continue
        for slice in $(seq 1 "$SLICES"); do
            order=(anchor ours)
            [ $(( (round + slice) % 2 )) = 1 ] && order=(ours anchor)
            for g in "${order[@]}"; do
                measure "$g" "$s" "$DURATION" "$round" "$slice"
                rps=$LAST_RPS
                measure "$g" baseline "$BASE_DURATION" "$round" "$slice" "$s"
                awk -v g="$g" -v s="$s" -v r="$round" -v k="$slice" -v x="$rps" \
                    -v a="${BEFORE[$g]}" -v b="$LAST_RPS" \
                    'BEGIN { printf "%s %s %d %d %.4f\n", g, s, r, k, x / ((a + b) / 2) }' >> "$WORK/ratios.txt"
                log "round $round: $g $s: $rps req/s (its baseline slices around it: ${BEFORE[$g]}, $LAST_RPS)"
                BEFORE[$g]=$LAST_RPS
            done
        done
    done
done
for g in "${GATEWAYS[@]}"; do
    [ "$(pgrep -P "$(cat "$WORK/$g.pid")" | head -n 1)" = "${WORKER[$g]}" ] \
        || log "WARNING: the $g worker was respawned during the run"
done

# ---- report -----------------------------------------------------------------------
runs() { awk '$1 > 0' "$WORK/runs-$1-$2.txt"; }   # the measured slices (not the warm-up)
col() { runs "$1" "$2" | awk -v c="$3" '{ print $c }' | median; }
ratio() { awk -v g="$1" -v s="$2" '$1 == g && $2 == s { print $5 }' "$WORK/ratios.txt" | median; }
cpu_us() { runs "$1" "$2" | awk -v hz="$HZ" '{ n += $6; t += $7 } END { printf "%.1f", (n > 0) ? t * 1e6 / hz / n : 0 }'; }
errors() { runs "$1" "$2" | awk '{ e += $5 } END { print e + 0 }'; }
# ours/anchor over the pairs of slices (same round and slice): x-baseline
# ratios from ratios.txt, req/s from the runs
pair_ratio() {   # scenario
    awk -v s="$1" '$2 == s { v[$1 " " $3 " " $4] = $5 }
        END { for (k in v) { split(k, f, " "); if (f[1] == "ours" && v["anchor " f[2] " " f[3]] > 0)
              print v[k] / v["anchor " f[2] " " f[3]] } }' "$WORK/ratios.txt" | median
}
pair_rps() {   # scenario
    join <(runs ours "$1" | awk '{ print $1 "-" $2 "-" $8, $3 }' | sort) \
         <(runs anchor "$1" | awk '{ print $1 "-" $2 "-" $8, $3 }' | sort) \
        | awk '$3 > 0 { print $2 / $3 }' | median
}

{
    echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), mode $MODE"
    echo
    echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) (nproc $(nproc)); load average before the report: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'); anchor: $(basename "$ANCHOR_MODULE") ($(md5sum < "$ANCHOR_MODULE" | cut -c1-12)); ours: build/modules"
    echo "- wrk, 1 thread, $CONNECTIONS connections; $ROUNDS round(s) of $SLICES slice(s) of ${DURATION}s per scenario and gateway, each followed by a ${BASE_DURATION}s baseline slice of the same gateway"
    echo
    echo "| scenario | gateway | req/s | p99 ms | x baseline | worker CPU us/req | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for s in "${SCENARIOS[@]}"; do
        for g in "${GATEWAYS[@]}"; do
            x=1.00
            [ "$s" = baseline ] || x=$(ratio "$g" "$s" | awk '{ printf "%.2f", $1 }')
            awk -v s="$s" -v g="$g" -v r="$(col "$g" "$s" 3)" -v p="$(col "$g" "$s" 4)" -v x="$x" \
                -v c="$(cpu_us "$g" "$s")" -v e="$(errors "$g" "$s")" \
                'BEGIN { printf "| %s | %s | %.0f | %.2f | %s | %s | %d |\n", s, g, r, p / 1000, x, c, e }'
        done
    done
    echo
    echo "| scenario | ours/anchor, x baseline | ours/anchor, req/s | ours/anchor, worker CPU per request |"
    echo "|---|---:|---:|---:|"
    for s in "${SCENARIOS[@]}"; do
        xr="-"
        [ "$s" = baseline ] || xr=$(pair_ratio "$s" | awk '{ printf "%.2f", $1 }')
        awk -v s="$s" -v xr="$xr" -v rr="$(pair_rps "$s")" -v co="$(cpu_us ours "$s")" -v ca="$(cpu_us anchor "$s")" \
            'BEGIN { printf "| %s | %s | %.2f | %.2f |\n", s, xr, rr, (ca > 0) ? co / ca : 0 }'
    done
    echo
    echo "x baseline: the median over a gateway's slices of the slice's req/s divided by the mean of that gateway's baseline slices right before and after it. req/s and p99: medians over the slices. ours/anchor: medians over the pairs of slices taken back to back (same round and slice); CPU: total worker CPU time over all slices divided by the requests. $(awk '{ n++; t += $3; if (min == "" || $3 < min) min = $3; if ($3 > max) max = $3 }
        END { printf "The %d baseline slices of both gateways: mean %.0f, lowest %.0f, highest %.0f req/s.", n, t / n, min, max }' \
        <(cat "$WORK/runs-anchor-baseline.txt" "$WORK/runs-ours-baseline.txt" | awk '$1 > 0'))"
} > "$WORK/report.md"
echo
cat "$WORK/report.md"
