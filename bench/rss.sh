#!/usr/bin/env bash
# NginxOAuth: what a worker costs in memory (bench/rss.sh).
#
# Starts, as children of this script (master_process on, daemon off,
# worker_processes 2, loopback only):
#
#   plain     nginx without the module, one static location
#   module    the same configuration plus load_module and one location per
#             feature:
#               static       no auth (the same location as plain's)
#               jwt          auth_jwt, RS256, auth_jwt_key_file
#               jwe          auth_jwt_type encrypted, RSA-OAEP-256 + A256GCM
#               introspect   auth_oauth2_token_introspect, no cache: every
#                            request asks the local IdP
#               sts          STSExchange, answered by the shared STS cache
#   idp       a third nginx (no module, one worker): the local IdP that
#             answers introspection and the STS token endpoint
#
# Both listen with reuseport, so the kernel spreads connections over the
# two workers.  At three points it reads /proc/PID/smaps_rollup and
# /proc/PID/smaps of every worker (and the master):
#
#   start     after start (one static request per worker)
#   first     after at least one request of each kind in every worker
#             (the X-Worker header tells which worker answered)
#   run       after N more requests of each kind (curl --parallel, 8
#             connections; RSS_REQUESTS, default 10000)
#
# and prints per process RSS, PSS, shared and private, anonymous and
# file-backed, then per worker the mappings that matter: the managed
# library, the module, libcrypto, libssl, the nginx binary, other
# libraries, [heap], the GC's reserved range (the cluster of adjacent
# anonymous mappings of 1 GiB or more), other anonymous memory (thread
# stacks, malloc arenas), shared-memory zones.  PSS divides a shared page
# among the processes that map it: file-backed pages (the libraries) are
# shared by the workers, the master and any other process that maps the
# same file; "instance PSS" (master plus workers) is what one nginx costs.
#
# Environment: NGINX_BIN (default /usr/sbin/nginx), RSS_REQUESTS (10000),
# RSS_MODULES (the directory of the two .so files, default build/modules),
# RSS_MAIN_CONF="..." (extra main-context lines of the module's nginx, e.g.
# "env DOTNET_GCgen0size=400000;"), RSS_KEEP=1 (keep the work dir),
# RSS_KINDS="static jwt ..." (a subset of the kinds, e.g. to compare with
# an older build that lacks a feature), RSS_DETAIL=1 (also list every
# mapping of the first module worker with an RSS of 64 KiB or more),
# RSS_TOKENS=DIR (keys and tokens to reuse instead of running
# bench/TokenGen, e.g. the tokens/ of an RSS_KEEP run; valid for a day).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES=${RSS_MODULES:-$ROOT/build/modules}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
REQUESTS=${RSS_REQUESTS:-10000}

BENCH_TAG=rss
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -f "$MODULES/ngx_http_oauth_module.so" ] || die "no module in $MODULES (run ./build.sh)"
[ -f "$MODULES/ngx_http_oauth_managed.so" ] || die "no managed library in $MODULES (run ./build.sh)"
command -v curl >/dev/null 2>&1 || die "curl is missing"

bench_workdir rss "${RSS_KEEP:-0}"

# a private copy: a build running meanwhile rewrites build/modules in place
mkdir -p "$WORK/modules"
cp "$MODULES/ngx_http_oauth_module.so" "$MODULES/ngx_http_oauth_managed.so" "$WORK/modules/"

PLAIN_PORT=$(free_port)
PORT=$(free_port)
IDP_PORT=$(free_port)

if [ -n "${RSS_TOKENS:-}" ]; then
    cp -r "$RSS_TOKENS" "$WORK/tokens"
else
    log "keys and tokens (bench/TokenGen)"
    dotnet run --project "$ROOT/bench/TokenGen" -c Release -v quiet -- "$WORK/tokens" 1 >/dev/null \
        || die "token generation failed"
fi
chmod -R a+rX "$WORK/tokens"
mkdir -p "$WORK/www"
printf 'ok\n' > "$WORK/www/ok.txt"
EXP=$(( $(date +%s) + 86400 ))

# ---- configurations ---------------------------------------------------------
common_head() {   # name
    cat <<EOF
worker_processes 2;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 1024; }
EOF
}

bench_idp_config "$WORK/idp.conf"

{
    common_head plain
    cat <<EOF
http {
    access_log off;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PLAIN_PORT reuseport;
        add_header X-Worker \$pid always;
        location /static/ { alias $WORK/www/; }
    }
}
EOF
} > "$WORK/plain.conf"

KINDS=${RSS_KINDS:-static jwt jwe introspect sts}
has_kind() { [[ " $KINDS " == *" $1 "* ]]; }
feature_locations() {
    has_kind jwt && cat <<EOF
        location /jwt/ {
            auth_jwt "rss"; auth_jwt_key_file $WORK/tokens/keys.jwks;
            alias $WORK/www/;
        }
EOF
    has_kind jwe && cat <<EOF
        location /jwe/ {
            auth_jwt "rss"; auth_jwt_type encrypted; auth_jwt_key_file $WORK/tokens/keys.jwks;
            alias $WORK/www/;
        }
EOF
    has_kind introspect && cat <<EOF
        location = /_introspect { internal; proxy_pass http://127.0.0.1:$IDP_PORT/introspect; }
        location /introspect/ {
            auth_oauth2_token_introspect on;
            auth_oauth2_token_introspect_endpoint /_introspect;
            alias $WORK/www/;
        }
EOF
    has_kind sts && cat <<EOF
        location /sts/ {
            STSExchange otx http://127.0.0.1:$IDP_PORT/token "auth=client_secret_basic&client_id=rss&client_secret=rss-secret&audience=api";
            STSVariables \$http_authorization \$sts_target;
            alias $WORK/www/;
        }
EOF
    return 0
}

{
    echo "load_module $WORK/modules/ngx_http_oauth_module.so;"
    echo "${RSS_MAIN_CONF:-}"
    common_head module
    cat <<EOF
http {
    access_log off;
    default_type application/octet-stream;
    auth_oauth2_token_client_id rss;
    auth_oauth2_token_client_secret rss-secret;
    server {
        listen 127.0.0.1:$PORT reuseport;
        add_header X-Worker \$pid always;
        location /static/ { alias $WORK/www/; }
$(feature_locations)
    }
}
EOF
} > "$WORK/module.conf"

token_of() {   # kind -> the token file's name, or nothing
    case "$1" in
        jwt) echo rs256 ;;
        jwe) echo jwe-rsa ;;
        introspect|sts) echo hs256 ;;
    esac
}
auth_args() {   # kind -> curl arguments
    local t
    t=$(token_of "$1")
    [ -n "$t" ] && printf '%s\n' -H "Authorization: Bearer $(head -n 1 "$WORK/tokens/tokens-$t.txt")"
    return 0
}

start_nginx() {   # name port
    "$NGINX_BIN" -p "$WORK" -c "$WORK/$1.conf" &
    PIDS+=("$!")
    local _
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$2/" && return 0
        sleep 0.1
    done
    die "nginx ($1) does not answer on port $2 (see $WORK/$1-error.log)"
}

workers_of() {   # name -> worker pids, sorted
    local master
    master=$(cat "$WORK/$1.pid")
    pgrep -P "$master" | sort -n
}

# one request on a new connection; prints "status worker-pid"
one_request() {   # port kind
    local args
    mapfile -t args < <(auth_args "$2")
    curl -s -o /dev/null -D - "${args[@]}" "http://127.0.0.1:$1/$2/ok.txt" \
        | awk 'NR == 1 { s = $2 } tolower($1) == "x-worker:" { w = $2 } END { sub(/\r/, "", w); print s, w }'
}

# new connections until every worker has answered KIND with 200 at least once
each_worker_once() {   # name port kind
    local want got=" " s w n=0
    want=$(workers_of "$1" | tr '\n' ' ')
    while :; do
        read -r s w < <(one_request "$2" "$3")
        [ "$s" = 200 ] || die "$1 /$3/ answers ${s:-nothing}, not 200 (see $WORK/$1-error.log)"
        [[ "$got" == *" $w "* ]] || got="$got$w "
        local missing=0 p
        for p in $want; do [[ "$got" == *" $p "* ]] || missing=1; done
        [ "$missing" = 0 ] && return 0
        n=$((n + 1))
        [ "$n" -lt 200 ] || die "$1: not every worker answered /$3/ in 200 connections"
    done
}

many_requests() {   # port kind count
    local cfg="$WORK/curl-$2.cfg" t tok="" i
    t=$(token_of "$2")
    [ -n "$t" ] && tok=$(head -n 1 "$WORK/tokens/tokens-$t.txt")
    {
        [ -n "$tok" ] && echo "header = \"Authorization: Bearer $tok\""
        echo "write-out = \"%{http_code}\\n\""
        for ((i = 0; i < $3; i++)); do
            echo "url = \"http://127.0.0.1:$1/$2/ok.txt\""
            echo "output = /dev/null"
        done
    } > "$cfg"
    curl -s --no-progress-meter --parallel --parallel-max 8 -K "$cfg" \
        > "$WORK/codes-$2.txt" 2>> "$WORK/curl.log"
    local bad
    bad=$(grep -vc '^200$' "$WORK/codes-$2.txt" || true)
    [ "$bad" = 0 ] || die "/$2/: $bad of $3 requests did not answer 200"
}

# ---- /proc readers ----------------------------------------------------------
# smaps_rollup -> "rss pss shared private anon file" in KiB
rollup() {   # pid
    awk '
        /^Rss:/ { rss = $2 } /^Pss:/ { pss = $2 }
        /^Shared_(Clean|Dirty):/ { sh += $2 } /^Private_(Clean|Dirty):/ { pr += $2 }
        /^Anonymous:/ { an = $2 }
        END { print rss, pss, sh, pr, an, rss - an }' "/proc/$1/smaps_rollup"
}

# smaps -> one line per category: "name rss pss private" in KiB
CATEGORIES="managed module libcrypto libssl nginx libs heap gc anon shm stack"
categories() {   # pid nginx-binary
    awk -v bin="$2" -v cats="$CATEGORIES" '
        function hex(s,   i, c, v) {
            v = 0
            for (i = 1; i <= length(s); i++) {
                c = index("0123456789abcdef", substr(s, i, 1)) - 1
                v = v * 16 + c
            }
            return v
        }
        /^[0-9a-f]+-[0-9a-f]+ / {
            n++
            split($1, r, "-"); lo[n] = hex(r[1]); hi[n] = hex(r[2])
            path = ""
            for (i = 6; i <= NF; i++) path = path (i > 6 ? " " : "") $i
            if (path ~ /ngx_http_oauth_managed\.so/) cat[n] = "managed"
            else if (path ~ /ngx_http_oauth_module\.so/) cat[n] = "module"
            else if (path ~ /libcrypto/) cat[n] = "libcrypto"
            else if (path ~ /libssl/) cat[n] = "libssl"
            else if (path == bin) cat[n] = "nginx"
            else if (path == "[heap]") cat[n] = "heap"
            else if (path == "[stack]") cat[n] = "stack"
            else if (path ~ /^\/dev\/zero/ || path ~ /^\/SYSV/) cat[n] = "shm"
            else if (path ~ /^\//) cat[n] = "libs"
            else if (path == "") cat[n] = "anon"
            else cat[n] = "libs"          # [vdso], [vvar] ...
            next
        }
        /^Rss:/ { rss[n] = $2 } /^Pss:/ { pss[n] = $2 }
        /^Private_(Clean|Dirty):/ { prv[n] += $2 }
        END {
            # the GC reserves a large range and commits parts of it: a run of
            # adjacent anonymous mappings of 1 GiB or more in total
            i = 1
            while (i <= n) {
                if (cat[i] != "anon") { i++; continue }
                j = i
                while (j < n && cat[j + 1] == "anon" && lo[j + 1] == hi[j]) j++
                if (hi[j] - lo[i] >= 1073741824)
                    for (k = i; k <= j; k++) cat[k] = "gc"
                i = j + 1
            }
            for (i = 1; i <= n; i++) {
                R[cat[i]] += rss[i]; P[cat[i]] += pss[i]; V[cat[i]] += prv[i]
            }
            m = split(cats, c, " ")
            for (i = 1; i <= m; i++) print c[i], R[c[i]] + 0, P[c[i]] + 0, V[c[i]] + 0
        }' "/proc/$1/smaps"
}

threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

report() {   # stage
    local name pid role line rss pss sh pr an fb ipss
    printf '\n## %s\n\n' "$1"
    printf '%-8s %-8s %7s %7s %8s %8s %7s %7s %7s\n' \
        instance process RSS PSS shared private anon file threads
    for name in plain module; do
        ipss=0
        for pid in "$(cat "$WORK/$name.pid")" $(workers_of "$name"); do
            role=worker
            [ "$pid" = "$(cat "$WORK/$name.pid")" ] && role=master
            read -r rss pss sh pr an fb < <(rollup "$pid")
            ipss=$((ipss + pss))
            printf '%-8s %-8s %7s %7s %8s %8s %7s %7s %7s\n' "$name" "$role" \
                "$(mib "$rss")" "$(mib "$pss")" "$(mib "$sh")" "$(mib "$pr")" \
                "$(mib "$an")" "$(mib "$fb")" "$(threads "$pid")"
        done
        printf '%-8s %-8s %7s %7s\n' "$name" "instance" "" "$(mib "$ipss")"
    done
    printf '\nper worker, MiB: RSS / PSS / private\n'
    printf '%-10s' mapping
    for name in plain module; do
        for pid in $(workers_of "$name"); do printf ' %18s' "$name $pid"; done
    done
    printf '\n'
    declare -A cell=()
    for name in plain module; do
        for pid in $(workers_of "$name"); do
            while read -r cat rss pss pr; do
                cell["$pid $cat"]="$(mib "$rss") / $(mib "$pss") / $(mib "$pr")"
            done < <(categories "$pid" "$(readlink -f "$NGINX_BIN")")
        done
    done
    for cat in $CATEGORIES; do
        printf '%-10s' "$cat"
        for name in plain module; do
            for pid in $(workers_of "$name"); do printf ' %18s' "${cell["$pid $cat"]}"; done
        done
        printf '\n'
    done
    if [ "${RSS_DETAIL:-0}" = 1 ]; then
        pid=$(workers_of module | head -n 1)
        printf '\nmappings of module worker %s with RSS >= 64 KiB (KiB: size RSS PSS anon)\n' "$pid"
        awk '/^[0-9a-f]+-[0-9a-f]+ / { h = $0; next }
             /^Size:/ { s = $2 } /^Rss:/ { r = $2 } /^Pss:/ { p = $2 }
             /^Anonymous:/ { if (r >= 64) printf "%9d %7d %7d %7d  %s\n", s, r, p, $2, h }' \
            "/proc/$pid/smaps"
    fi
}

# ---- run --------------------------------------------------------------------
log "starting the IdP, plain nginx and nginx with the module"
start_nginx idp "$IDP_PORT"
start_nginx plain "$PLAIN_PORT"
start_nginx module "$PORT"
for name in plain module; do
    [ "$(workers_of "$name" | wc -l)" = 2 ] || die "$name does not have 2 workers"
done
each_worker_once plain "$PLAIN_PORT" static
each_worker_once module "$PORT" static
report "start (one static request per worker)"

for k in $KINDS; do each_worker_once module "$PORT" "$k"; done
report "first (every worker served each kind at least once)"

log "$REQUESTS requests of each kind, 8 connections"
many_requests "$PLAIN_PORT" static "$REQUESTS"
for k in $KINDS; do many_requests "$PORT" "$k" "$REQUESTS"; done
report "run ($REQUESTS more requests of each kind)"

if grep -E '\[(alert|crit|emerg)\]' "$WORK"/*-error.log >&2; then
    die "the error logs above hold alerts"
fi
