#!/usr/bin/env bash
# NginxOAuth benchmark (./build.sh bench [--quick | --callgrind]).
#
# One gateway nginx, ONE worker, our module, loopback only.  Every scenario is a
# location of the same shape (a static file served in the content phase,
# after the access phase) so the ratio to the baseline is the module's cost.
#
# The IdP the scenarios ask (introspection, token endpoint, JWKS, discovery
# metadata: fixed answers) is a SEPARATE plain nginx, no module loaded, one
# worker, its own config, pid and port, started before the gateway and
# stopped after it (in --callgrind mode too, where only the gateway runs
# under valgrind).  In production the IdP is another machine: served by
# the gateway's own worker, each uncached introspection would charge the
# gateway for two HTTP requests and the IdP's answer, and the scenarios
# that ask the IdP would measure the IdP as much as the module.  On this
# machine the IdP still shares the CPUs, so its work shows in the req/s of
# those scenarios, but no longer in the gateway worker's CPU time per
# request nor in its instruction counts.
#
# The scenarios:
#
#   baseline              no auth (a 1 s slice before the first scenario
#                         and after every slice of every scenario: a slice's
#                         ratio is to the mean of the baseline slices just
#                         before and just after it)
#   baseline-header       no auth, but the RS256 token in an Authorization
#                         header (what nginx alone pays for reading it)
#   jwt-ALG-warm          auth_jwt, the same token on every request
#   jwt-ALG-warm-cache    the same with auth_jwt_verify_cache
#   jwt-ALG-cold          a different valid token on every request (a wrk
#                         script cycles through COUNT pre-generated tokens)
#   jwt-rs256-keyreq      RS256 warm, keys from auth_jwt_key_request (the
#                         shared key set cache: fetched once, not per request)
#   jwt-rs256-discovery   the same through auth_jwt_discovery (metadata and
#                         keys cached)
#   jwt-rs256-warm-nometrics
#                         jwt-rs256-warm with "oauth_metrics off" (the other
#                         scenarios count their decisions in the metrics
#                         zone: the difference is the cost of counting)
#   jwt-claims3           RS256 warm plus three auth_jwt_require_claim rules
#   jwe-rsa-*             auth_jwt_type encrypted, RSA-OAEP-256 + A256GCM:
#                         warm, warm with auth_jwt_verify_cache (a hit skips
#                         the decryption), cold
#   jwe-dir-*             auth_jwt_type encrypted, dir + A256GCM (same three)
#   nested-*              auth_jwt_type nested, an RS256 JWS inside
#                         RSA-OAEP-256 + A256GCM (same three; a cache hit
#                         skips decryption and signature)
#   introspect-hit        auth_oauth2_token_introspect, answered by the cache
#   introspect-nocache    introspection on every request against the local
#                         IdP (below), through an internal location that
#                         proxy_passes to it as the anchor's README writes
#                         it: HTTP/1.0, a new TCP connection per call
#   introspect-nocache-keepalive
#                         the same through an upstream{} with keepalive and
#                         proxy_http_version 1.1 (connections reused)
#   auth-request-nocache  nginx's own auth_request to the first internal
#                         location (a GET subrequest, no body, no parsing):
#                         the floor of any module that asks an IdP through
#                         a subrequest on every request, the C anchor too
#   auth-request-nocache-keepalive
#                         the same through the keepalive location: the
#                         floor of introspect-nocache-keepalive
#   exchange-hit          auth_oauth2_token_exchange, answered by the cache
#   sts-hit               STSExchange otx, answered by the shared STS cache
#   introspect-redis      introspection with a cold local zone and a warm
#                         Redis (oauth_redis, redis=): a different token on
#                         every request, the local zone (32k) too small to
#                         hold them, every one of them already in a local
#                         redis-server (a pass over all tokens before the
#                         run): each request is a gateway's first sight of
#                         its token, answered by Redis (GET, AES-GCM open)
#
# Then the slow-STS concurrency run (bench/sts-slow.sh): N concurrent
# exchanges with distinct source tokens against an STS that answers after
# 1 s, and an unrelated request's latency while they are outstanding.
#
# Prints requests/s, p50, p99, the ratio to the baseline of the same run,
# the worker's RSS before/after each scenario, `openssl speed` verify times
# and, for cold scenarios, the "crypto bound" 1/(1/baseline + verify time);
# and the managed core alone (bench/verify-loop.c: nox_jwt_verify in a loop
# over the cold tokens, no nginx, no network) against openssl speed.
# The table (and the machine description) is written to docs/PERFORMANCE.md.
#
#   --quick       one 2 s slice per scenario, 2000 tokens (under 2 minutes)
#   (default)     two rounds of three 2 s slices per scenario, 10000 tokens
#                 (under 10 minutes); ratios are the median of the slices
#   --callgrind   nginx under valgrind --tool=callgrind (master_process off,
#                 daemon off): instructions per request per scenario
#
# This machine's speed swings by up to a factor of two within seconds, so
# nothing is compared across the run: every slice of a scenario runs
# between two 1 s baseline slices and is compared with them, and a cold
# scenario's crypto bound uses an `openssl speed` of its algorithm taken
# right before and right after each slice.
#
# Environment: NGINX_BIN (default /usr/sbin/nginx), BENCH_CONNECTIONS (32),
# BENCH_NO_DOCS=1 (do not touch docs/PERFORMANCE.md), BENCH_ONLY="names"
# (only these scenarios, plus the baseline), BENCH_KEEP=1 (keep the work dir),
# BENCH_MAIN_CONF="..." (extra main-context lines, e.g. "env DOTNET_GCgen0size=400000;").
# Side by side with the C anchor (no-cache introspection): bench/anchor.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES="$ROOT/build/modules"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
CONNECTIONS=${BENCH_CONNECTIONS:-32}

MODE=full
case "${1:-}" in
    --quick) MODE=quick ;;
    --callgrind) MODE=callgrind ;;
    "") ;;
    *) echo "bench/run.sh: unknown option '$1' (--quick | --callgrind)" >&2; exit 2 ;;
esac

if [ "$MODE" = quick ]; then
    ROUNDS=1; SLICES=1; DURATION=2; BASE_DURATION=1; WARMUP=1; COUNT=2000
else
    ROUNDS=2; SLICES=3; DURATION=2; BASE_DURATION=1; WARMUP=2; COUNT=10000
fi
CALLGRIND_REQUESTS=${BENCH_CALLGRIND_REQUESTS:-200}
# callgrind reads only the first CALLGRIND_REQUESTS tokens of a cold set
[ "$MODE" = callgrind ] && COUNT=$(( CALLGRIND_REQUESTS > 200 ? CALLGRIND_REQUESTS : 200 ))

BENCH_TAG=bench
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -f "$MODULES/ngx_http_oauth_module.so" ] || die "no module in $MODULES (run ./build.sh)"

need_tool() {   # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || die "$1 is missing (apt-get install $2, as root)"
    log "installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; } \
        || die "cannot install $2"
}

need_tool curl curl
need_tool openssl openssl
need_tool redis-server redis-server
if [ "$MODE" = callgrind ]; then
    need_tool valgrind valgrind
else
    need_tool wrk wrk
fi

bench_workdir bench "${BENCH_KEEP:-0}"
# a private copy: a build running meanwhile rewrites build/modules in place,
# which would crash workers that have the module mapped
mkdir -p "$WORK/modules"
cp "$MODULES/ngx_http_oauth_module.so" "$MODULES/ngx_http_oauth_managed.so" "$WORK/modules/"
MODULES="$WORK/modules"

PORT=$(free_port)
IDP_PORT=$(free_port)
PLAIN_PORT=$(free_port)
REDIS_PORT=$(free_port)

# ---- Redis: the second cache level of introspect-redis ------------------------
mkdir -p "$WORK/redis"
head -c 32 /dev/urandom | base64 > "$WORK/redis.key"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK/redis" --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
redis_cmd() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
for _ in $(seq 1 100); do
    [ "$(redis_cmd PING 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(redis_cmd PING 2>/dev/null)" = PONG ] || die "redis-server does not answer (see $WORK/redis.log)"

# ---- keys and tokens --------------------------------------------------------
log "keys and $COUNT tokens per algorithm (bench/TokenGen)"
dotnet run --project "$ROOT/bench/TokenGen" -c Release -v quiet -- "$WORK/tokens" "$COUNT" >/dev/null \
    || die "token generation failed"
ALGS="hs256 rs256 es256 eddsa"
warm_token() { head -n 1 "$WORK/tokens/tokens-$1.txt"; }

mkdir -p "$WORK/www"
printf 'ok\n' > "$WORK/www/ok.txt"

# ---- nginx configuration ----------------------------------------------------
EXP=$(( $(date +%s) + 86400 ))
jwt_locations() {
    local a
    for a in $ALGS; do
        cat <<EOF
        location /jwt-$a-warm/ { auth_jwt "bench"; auth_jwt_key_file $WORK/tokens/keys.jwks; alias $WORK/www/; }
        location /jwt-$a-warm-cache/ {
            auth_jwt "bench"; auth_jwt_key_file $WORK/tokens/keys.jwks;
            auth_jwt_verify_cache zone=jwt:16m;
            alias $WORK/www/;
        }
        location /jwt-$a-cold/ { auth_jwt "bench"; auth_jwt_key_file $WORK/tokens/keys.jwks; alias $WORK/www/; }
EOF
    done
}

jwe_locations() {
    local name type
    for name in jwe-rsa jwe-dir nested; do
        type=encrypted
        [ "$name" = nested ] && type=nested
        cat <<EOF
        location /$name-warm/ {
            auth_jwt "bench"; auth_jwt_type $type; auth_jwt_key_file $WORK/tokens/keys.jwks; alias $WORK/www/;
        }
        location /$name-warm-cache/ {
            auth_jwt "bench"; auth_jwt_type $type; auth_jwt_key_file $WORK/tokens/keys.jwks;
            auth_jwt_verify_cache zone=jwt:16m;
            alias $WORK/www/;
        }
        location /$name-cold/ {
            auth_jwt "bench"; auth_jwt_type $type; auth_jwt_key_file $WORK/tokens/keys.jwks; alias $WORK/www/;
        }
EOF
    done
}

write_config() {   # file master_process
    cat > "$1" <<EOF
load_module $MODULES/ngx_http_oauth_module.so;
${BENCH_MAIN_CONF:-}
worker_processes 1;
master_process $2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    auth_oauth2_token_client_id bench;
    auth_oauth2_token_client_secret bench-secret;
    oauth_redis bench 127.0.0.1:$REDIS_PORT key_file=$WORK/redis.key keepalive=64;

    # the IdP (a separate nginx, bench_idp_config), also through reused connections
    upstream bench_idp { server 127.0.0.1:$IDP_PORT; keepalive 16; }

    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /_introspect { internal; proxy_pass http://127.0.0.1:$IDP_PORT/introspect; }
        location = /_introspect_ka {
            internal; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass http://bench_idp/introspect;
        }
        location = /_token { internal; proxy_pass http://127.0.0.1:$IDP_PORT/token; }
        auth_oauth2_token_introspect_endpoint /_introspect;
        auth_oauth2_token_token_endpoint /_token;

        location /baseline/ { alias $WORK/www/; }
        location /baseline-header/ { alias $WORK/www/; }
$(jwt_locations)
$(jwe_locations)
        location /_idp/ { internal; proxy_pass http://127.0.0.1:$IDP_PORT/; }
        location /jwt-rs256-keyreq/ {
            auth_jwt "bench"; auth_jwt_key_request /_idp/jwks; alias $WORK/www/;
        }
        location /jwt-rs256-discovery/ {
            auth_jwt "bench"; auth_jwt_discovery https://idp.bench uri=/_idp/; alias $WORK/www/;
        }
        location /jwt-rs256-warm-nometrics/ {
            oauth_metrics off;
            auth_jwt "bench"; auth_jwt_key_file $WORK/tokens/keys.jwks; alias $WORK/www/;
        }
        location /jwt-claims3/ {
            auth_jwt "bench"; auth_jwt_key_file $WORK/tokens/keys.jwks;
            auth_jwt_require_claim iss eq "https://idp.bench";
            auth_jwt_require_claim aud eq api;
            auth_jwt_require_claim exp gt json=1000000000;
            alias $WORK/www/;
        }
        location /introspect-hit/ {
            auth_oauth2_token_introspect on;
            auth_oauth2_token_introspect_cache zone=introspect:16m;
            alias $WORK/www/;
        }
        location /introspect-nocache/ {
            auth_oauth2_token_introspect on;
            alias $WORK/www/;
        }
        location /introspect-nocache-keepalive/ {
            auth_oauth2_token_introspect on;
            auth_oauth2_token_introspect_endpoint /_introspect_ka;
            alias $WORK/www/;
        }
        location /auth-request-nocache/ { auth_request /_introspect; alias $WORK/www/; }
        location /auth-request-nocache-keepalive/ { auth_request /_introspect_ka; alias $WORK/www/; }
        location /introspect-redis/ {
            auth_oauth2_token_introspect on;
            auth_oauth2_token_introspect_cache zone=iredis:32k max_ttl=1h redis=bench;
            alias $WORK/www/;
        }
        location /exchange-hit/ {
            auth_oauth2_token_exchange on;
            auth_oauth2_token_audience api;
            auth_oauth2_token_exchange_cache zone=exchange:16m;
            alias $WORK/www/;
        }
        location /sts-hit/ {
            STSExchange otx http://127.0.0.1:$IDP_PORT/token "auth=client_secret_basic&client_id=bench&client_secret=bench-secret&audience=api";
            STSVariables \$http_authorization \$sts_target;
            alias $WORK/www/;
        }
    }
}
EOF
}

# scenario name -> token kind: "" none, warm:ALG, cold:ALG
SCENARIOS=(baseline baseline-header)
declare -A TOKEN_OF=([baseline]="" [baseline-header]="warm:rs256")
for a in $ALGS; do
    SCENARIOS+=("jwt-$a-warm" "jwt-$a-warm-cache" "jwt-$a-cold")
    TOKEN_OF["jwt-$a-warm"]="warm:$a"
    TOKEN_OF["jwt-$a-warm-cache"]="warm:$a"
    TOKEN_OF["jwt-$a-cold"]="cold:$a"
done
for a in jwe-rsa jwe-dir nested; do
    SCENARIOS+=("$a-warm" "$a-warm-cache" "$a-cold")
    TOKEN_OF["$a-warm"]="warm:$a"
    TOKEN_OF["$a-warm-cache"]="warm:$a"
    TOKEN_OF["$a-cold"]="cold:$a"
done
SCENARIOS+=(jwt-rs256-keyreq jwt-rs256-discovery)
TOKEN_OF[jwt-rs256-keyreq]="warm:rs256"
TOKEN_OF[jwt-rs256-discovery]="warm:rs256"
SCENARIOS+=(jwt-rs256-warm-nometrics)
TOKEN_OF[jwt-rs256-warm-nometrics]="warm:rs256"
SCENARIOS+=(jwt-claims3 introspect-hit introspect-nocache introspect-nocache-keepalive auth-request-nocache
    auth-request-nocache-keepalive introspect-redis exchange-hit sts-hit)
TOKEN_OF[introspect-redis]="cold:hs256"
TOKEN_OF[jwt-claims3]="warm:rs256"
TOKEN_OF[introspect-hit]="warm:hs256"
TOKEN_OF[introspect-nocache]="warm:hs256"
TOKEN_OF[introspect-nocache-keepalive]="warm:hs256"
TOKEN_OF[auth-request-nocache]="warm:hs256"
TOKEN_OF[auth-request-nocache-keepalive]="warm:hs256"
TOKEN_OF[exchange-hit]="warm:hs256"
TOKEN_OF[sts-hit]="warm:hs256"
if [ -n "${BENCH_ONLY:-}" ]; then   # space-separated scenario names; baseline always runs
    keep=(baseline)
    for s in "${SCENARIOS[@]}"; do
        [[ " $BENCH_ONLY " == *" $s "* ]] && [ "$s" != baseline ] && keep+=("$s")
    done
    SCENARIOS=("${keep[@]}")
fi
url_of() { echo "http://127.0.0.1:$PORT/$1/ok.txt"; }

check_scenario() {   # name: one request must answer 200
    local kind=${TOKEN_OF[$1]} status args=()
    [ -n "$kind" ] && args=(-H "Authorization: Bearer $(warm_token "${kind#*:}")")
    status=$(curl -s -o /dev/null -w '%{http_code}' "${args[@]}" "$(url_of "$1")" || true)
    [ "$status" = 200 ] || die "scenario $1 answers $status, not 200 (see $WORK/error.log; BENCH_KEEP=1 keeps it)"
}

wait_port() {   # port
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    die "nginx does not answer on port $1 (see $WORK/error.log)"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }   # utime stime
CLK_TCK=$(getconf CLK_TCK)

machine() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "- CPU: ${cpu:-unknown} (nproc $(nproc))"
    echo "- kernel: $(uname -sr)"
    echo "- nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')"
    echo "- OpenSSL: $(openssl version)"
    echo "- .NET SDK: $(dotnet --version 2>/dev/null || echo unknown)"
    echo "- load generator: wrk, 1 thread, $CONNECTIONS connections; $ROUNDS round(s) of $SLICES slice(s) of ${DURATION}s per scenario, each slice between two ${BASE_DURATION}s baseline slices; $COUNT cold tokens"
}

# ---- the IdP: a plain nginx of its own, started before the gateway ---------
bench_idp_config "$WORK/idp.conf"
"$NGINX_BIN" -p "$WORK" -c "$WORK/idp.conf" &
PIDS+=("$!")
wait_port "$IDP_PORT"

# ---- callgrind mode ---------------------------------------------------------
if [ "$MODE" = callgrind ]; then
    write_config "$WORK/nginx.conf" off
    log "nginx under valgrind --tool=callgrind (slow start)"
    # The .NET GC reserves 256 GiB of address space at start unless
    # RLIMIT_AS is set; valgrind refuses such a mapping and the runtime
    # aborts.  With a limit the GC reserves less and runs under valgrind.
    (
        ulimit -v 16000000
        exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
            --dump-instr=no --collect-atstart=yes \
            "$NGINX_BIN" -p "$WORK" -c "$WORK/nginx.conf" >"$WORK/valgrind.log" 2>&1
    ) &
    VG=$!
    PIDS+=("$VG")
    for _ in $(seq 1 600); do
        curl -s -m 5 -o /dev/null "$(url_of baseline)" && break
        kill -0 "$VG" 2>/dev/null || { tail -n 30 "$WORK/valgrind.log" "$WORK/error.log" >&2; die "nginx under valgrind exited"; }
        sleep 0.5
    done
    # the first managed call of a policy builds it: warm every scenario
    for s in "${SCENARIOS[@]}"; do check_scenario "$s"; done

    printf '\n%-32s %16s\n' scenario "instr/request"
    for s in "${SCENARIOS[@]}"; do
        kind=${TOKEN_OF[$s]}
        cfg="$WORK/curl-$s.cfg"
        : > "$cfg"
        if [ "${kind%%:*}" = cold ]; then
            mapfile -t toks < <(head -n "$CALLGRIND_REQUESTS" "$WORK/tokens/tokens-${kind#*:}.txt")
        fi
        for i in $(seq 0 $((CALLGRIND_REQUESTS - 1))); do
            [ "$i" -gt 0 ] && echo "next" >> "$cfg"
            echo "url = \"$(url_of "$s")\"" >> "$cfg"
            echo "output = /dev/null" >> "$cfg"
            case "${kind%%:*}" in
                warm) echo "header = \"Authorization: Bearer $(warm_token "${kind#*:}")\"" >> "$cfg" ;;
                cold) echo "header = \"Authorization: Bearer ${toks[$i]}\"" >> "$cfg" ;;
            esac
        done
        callgrind_control -z "$VG" >/dev/null 2>&1 || die "callgrind_control -z failed"
        curl -s -K "$cfg" >/dev/null
        callgrind_control -d "$s" "$VG" >/dev/null 2>&1 || die "callgrind_control -d failed"
        sleep 0.5
        dump=$(ls -t "$WORK"/callgrind.out.* | head -n 1)
        ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
        printf '%-32s %16d\n' "$s" $(( ${ir:-0} / CALLGRIND_REQUESTS ))
    done
    exit 0
fi

# ---- plain nginx: the RSS reference -----------------------------------------
cat > "$WORK/plain.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/plain.pid;
error_log $WORK/plain-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server { listen 127.0.0.1:$PLAIN_PORT; location /baseline/ { alias $WORK/www/; } }
}
EOF
"$NGINX_BIN" -p "$WORK" -c "$WORK/plain.conf" &
PIDS+=("$!")
wait_port "$PLAIN_PORT"
wrk -t1 -c"$CONNECTIONS" -d"$WARMUP"s "http://127.0.0.1:$PLAIN_PORT/baseline/ok.txt" >/dev/null
PLAIN_WORKER=$(pgrep -P "$(cat "$WORK/plain.pid")" | head -n 1)
PLAIN_RSS=$(rss_kib "$PLAIN_WORKER")
kill "$(cat "$WORK/plain.pid")"

# ---- the module -------------------------------------------------------------
write_config "$WORK/nginx.conf" on
"$NGINX_BIN" -p "$WORK" -c "$WORK/nginx.conf" &
PIDS+=("$!")
wait_port "$PORT"
for s in "${SCENARIOS[@]}"; do check_scenario "$s"; done
WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -n 1)

# introspect-redis: one pass over every token puts it into Redis (through
# the same location, so the same keys); the 32k local zone keeps only a few
if [[ " ${SCENARIOS[*]} " == *" introspect-redis "* ]]; then
    log "warming Redis with the $COUNT hs256 tokens (introspect-redis)"
    for _ in $(seq 1 60); do
        [ "$(redis_cmd DBSIZE)" -ge "$COUNT" ] && break
        BENCH_TOKENS="$WORK/tokens/tokens-hs256.txt" wrk -t1 -c"$CONNECTIONS" -d2s \
            -s "$ROOT/bench/wrk.lua" "$(url_of introspect-redis)" >/dev/null
    done
    [ "$(redis_cmd DBSIZE)" -ge "$COUNT" ] || die "Redis holds $(redis_cmd DBSIZE) of $COUNT entries after warming"
fi
START_RSS=$(rss_kib "$WORKER")

# openssl speed and the managed core alone (bench/verify-loop.c:
# nox_jwt_verify in a loop in its own process, no nginx, no network: what
# the module adds around the crypto), taken in turns while the worker is
# idle, three rounds, best of three for each: this machine's noise only
# ever slows a run down, and comes and goes within seconds (a faster
# crypto time also makes the crypto bound stricter, not looser)
log "openssl speed and the managed core alone (3 rounds)"
SPEED_SECONDS=2
LOOP_ITER_SCALE=3
if [ "$MODE" = quick ]; then SPEED_SECONDS=1; LOOP_ITER_SCALE=12; fi
declare -A LOOP_ITERS=([hs256]=200000 [rs256]=60000 [es256]=20000 [eddsa]=12000)
"${CC:-cc}" -O2 -I"$ROOT/native/include" "$ROOT/bench/verify-loop.c" -o "$WORK/verify-loop" -ldl \
    || die "cannot build bench/verify-loop.c"
: > "$WORK/speed.txt"
: > "$WORK/loop.txt"
for _ in 1 2 3; do
    openssl speed -seconds "$SPEED_SECONDS" rsa2048 ecdsap256 ed25519 >> "$WORK/speed.txt" 2>/dev/null || true
    for a in $ALGS; do
        printf '%s ' "$a" >> "$WORK/loop.txt"
        DOTNET_GCgen0size=100000 "$WORK/verify-loop" "$MODULES/ngx_http_oauth_managed.so" \
            "$WORK/tokens/keys.jwks" "$WORK/tokens/tokens-$a.txt" $(( ${LOOP_ITERS[$a]} / LOOP_ITER_SCALE )) \
            >> "$WORK/loop.txt" || die "verify-loop failed for $a"
    done
done
verify_per_s() {   # pattern -> the most verifies per second (last column of the lines)
    awk -v p="$1" 'index($0, p) && $NF + 0 > v { v = $NF + 0 } END { print v + 0 }' "$WORK/speed.txt"
}
declare -A LOOP_US
for a in $ALGS; do
    LOOP_US[$a]=$(awk -v a="$a" '$1 == a && (m == "" || $3 < m) { m = $3 } END { print m }' "$WORK/loop.txt")
done
declare -A VERIFY_PS=(
    [rs256]=$(verify_per_s "rsa 2048 bits")
    [es256]=$(verify_per_s "(nistp256)")
    [eddsa]=$(verify_per_s "(Ed25519)")
)

run_wrk() {   # scenario seconds -> RESULT line
    local s=$1 secs=$2 kind=${TOKEN_OF[$1]} args=()
    case "${kind%%:*}" in
        warm) args=(-H "Authorization: Bearer $(warm_token "${kind#*:}")") ;;
    esac
    if [ "${kind%%:*}" = cold ]; then
        BENCH_TOKENS="$WORK/tokens/tokens-${kind#*:}.txt" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" \
            -s "$ROOT/bench/wrk.lua" "$(url_of "$s")"
    else
        BENCH_TOKENS="" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" "${args[@]}" \
            -s "$ROOT/bench/wrk.lua" "$(url_of "$s")"
    fi | awk '/^RESULT/'
}

# One wrk run of a scenario; appends "round rps p50 p99 errors requests
# utime stime" (times in clock ticks of the worker) to $WORK/runs-NAME.txt
# and leaves the rate in LAST_RPS.
measure() {   # scenario seconds round
    local u0 k0 u1 k1 reqs dur p50 p99 errs
    read -r u0 k0 < <(cpu_ticks "$WORKER")
    read -r _ reqs dur p50 p99 errs < <(run_wrk "$1" "$2")
    read -r u1 k1 < <(cpu_ticks "$WORKER")
    LAST_RPS=$(awk -v r="$reqs" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    echo "$3 $LAST_RPS $p50 $p99 $errs $reqs $((u1 - u0)) $((k1 - k0))" >> "$WORK/runs-$1.txt"
}

# verify/s of one algorithm from a short `openssl speed`, right now
speed_now() {   # alg
    local spec pattern
    case "$1" in
        rs256) spec=rsa2048; pattern="rsa 2048 bits" ;;
        es256) spec=ecdsap256; pattern="(nistp256)" ;;
        eddsa) spec=ed25519; pattern="(Ed25519)" ;;
        *) echo 0; return ;;
    esac
    openssl speed -seconds 1 "$spec" 2>/dev/null | awk -v p="$pattern" 'index($0, p) { v = $NF } END { print v + 0 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

log "$ROUNDS round(s) of ${#SCENARIOS[@]} scenarios, $SLICES slice(s) of ${DURATION}s each, a ${BASE_DURATION}s baseline slice between slices"
run_wrk baseline "$WARMUP" >/dev/null
declare -A RSS0 RSS1 ROUND_RSS
: > "$WORK/pairs.txt"   # scenario round slice ratio bound_ratio bound baseline
for s in "${SCENARIOS[@]}"; do : > "$WORK/runs-$s.txt"; done
for round in $(seq 1 "$ROUNDS"); do
    measure baseline "$BASE_DURATION" "$round"
    before=$LAST_RPS
    for s in "${SCENARIOS[@]}"; do
        [ "$s" = baseline ] && continue
        kind=${TOKEN_OF[$s]}
        cold=0
        [ "${kind%%:*}" = cold ] && cold=1
        v0=0 v1=0
        [ $cold = 1 ] && v0=$(speed_now "${kind#*:}")
        [ "$round" = 1 ] && RSS0[$s]=$(rss_kib "$WORKER")
        for slice in $(seq 1 "$SLICES"); do
            measure "$s" "$DURATION" "$round"
            rps=$LAST_RPS
            measure baseline "$BASE_DURATION" "$round"
            # a cold slice's verify time: the mean of openssl speed right
            # before and right after it
            [ $cold = 1 ] && v1=$(speed_now "${kind#*:}")
            awk -v s="$s" -v r="$round" -v k="$slice" -v x="$rps" -v a="$before" -v b="$LAST_RPS" \
                -v v0="$v0" -v v1="$v1" 'BEGIN {
                base = (a + b) / 2; t = (v0 > 0 && v1 > 0) ? (1 / v0 + 1 / v1) / 2 : 0;
                bound = (t > 0) ? 1 / (1 / base + t) : 0;
                printf "%s %d %d %.4f %.4f %.0f %.0f\n", s, r, k, x / base, (bound > 0) ? x / bound : 0, bound, base }' >> "$WORK/pairs.txt"
            vlog=""
            [ $cold = 1 ] && vlog="; openssl verify/s $v0, $v1"
            log "round $round: $s: $rps req/s (baseline slices around it: $before, $LAST_RPS$vlog)"
            before=$LAST_RPS
            v0=$v1
        done
        RSS1[$s]=$(rss_kib "$WORKER")
    done
    ROUND_RSS[$round]=$(rss_kib "$WORKER")
done
RSS0[baseline]=$START_RSS
RSS1[baseline]=$(rss_kib "$WORKER")
END_RSS=$(rss_kib "$WORKER")
[ "$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -n 1)" = "$WORKER" ] || log "WARNING: the worker was respawned during the run"

# ---- report -----------------------------------------------------------------
col() { awk -v c="$2" '{ print $c }' "$WORK/runs-$1.txt" | median; }                  # scenario column -> median
pair() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$WORK/pairs.txt" | median; }   # scenario column -> median
per_req() {   # scenario -> "total user sys" us of worker CPU per request over all its runs
    awk -v h="$CLK_TCK" '{ n += $6; u += $7; k += $8 }
        END { printf "%.1f %.1f %.1f\n", (u + k) * 1e6 / h / n, u * 1e6 / h / n, k * 1e6 / h / n }' "$WORK/runs-$1.txt"
}
table() {
    echo "| scenario | req/s | p50 ms | p99 ms | x baseline | crypto bound req/s | x bound | worker CPU us/req | user / sys us/req | worker RSS before / after MiB | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local s bound xb ratio cpu usr sys errs
    for s in "${SCENARIOS[@]}"; do
        bound="-"; xb="-"; ratio="1.00"
        if [ "$s" != baseline ]; then
            ratio=$(pair "$s" 4 | awk '{ printf "%.2f", $1 }')
            if [ "${TOKEN_OF[$s]%%:*}" = cold ] && [ "$(pair "$s" 6)" != 0 ]; then
                bound=$(pair "$s" 6 | awk '{ printf "%.0f", $1 }')
                xb=$(pair "$s" 5 | awk '{ printf "%.2f", $1 }')
            fi
        fi
        read -r cpu usr sys < <(per_req "$s")
        errs=$(awk '{ e += $5 } END { print e + 0 }' "$WORK/runs-$s.txt")
        awk -v s="$s" -v r="$(col "$s" 2)" -v p50="$(col "$s" 3)" -v p99="$(col "$s" 4)" -v x="$ratio" \
            -v bound="$bound" -v xb="$xb" -v m0="${RSS0[$s]}" -v m1="${RSS1[$s]}" -v e="$errs" \
            -v c="$cpu" -v u="$usr" -v k="$sys" \
            'BEGIN { printf "| %s | %d | %.2f | %.2f | %s | %s | %s | %s | %s / %s | %.1f / %.1f | %d |\n",
                     s, r, p50 / 1000, p99 / 1000, x, bound, xb, c, u, k, m0 / 1024, m1 / 1024, e }'
    done
}
baseline_spread() {
    awk '{ n++; t += $2; if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2 }
        END { printf "The %d baseline slices of this run: mean %.0f, lowest %.0f, highest %.0f req/s", n, t / n, min, max }' \
        "$WORK/runs-baseline.txt"
}
crypto() {
    local a
    echo "| algorithm | openssl speed verify/s | openssl verify us | module alone us/verify | crypto share of the module's time |"
    echo "|---|---:|---:|---:|---:|"
    for a in $ALGS; do
        awk -v a="$a" -v v="${VERIFY_PS[$a]:-0}" -v l="${LOOP_US[$a]:-0}" \
            'BEGIN { n = (a == "rs256") ? "RS256 (rsa2048)" : (a == "es256") ? "ES256 (ecdsap256)" : (a == "eddsa") ? "EdDSA (ed25519)" : "HS256";
                     if (v > 0) printf "| %s | %.0f | %.1f | %.1f | %.2f |\n", n, v, 1e6 / v, l, (l > 0) ? (1e6 / v) / l : 0;
                     else printf "| %s | - | - | %.1f | - |\n", n, l }'
    done
}
memory() {
    awk -v p="$PLAIN_RSS" -v s="$START_RSS" -v e="$END_RSS" 'BEGIN {
        printf "- plain nginx worker (no module, after warm-up): %.1f MiB\n", p / 1024;
        printf "- module worker after start and one request per scenario: %.1f MiB (+%.1f MiB)\n", s / 1024, (s - p) / 1024;
        printf "- module worker after the run: %.1f MiB (+%.1f MiB over plain nginx)\n", e / 1024, (e - p) / 1024 }'
    local r
    for r in $(seq 1 "$ROUNDS"); do
        awk -v r="$r" -v m="${ROUND_RSS[$r]}" 'BEGIN { printf "- module worker after round %d: %.1f MiB\n", r, m / 1024 }'
    done
    cat "$WORK"/runs-*.txt | awk '{ n += $6 } END { printf "- requests served by the worker in the measured runs: %d\n", n }'
}

REPORT="$WORK/report.md"
{
    echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), mode $MODE"
    echo
    machine
    echo
    table
    echo
    echo "Each ratio is the median over a scenario's slices of the slice's req/s divided by the mean of the baseline slices right before and after it; a cold slice's crypto bound uses those baselines and the mean verify time of two \`openssl speed\` runs of its algorithm, right before and right after the slice. req/s, p50 and p99 are medians over the slices. $(baseline_spread)."
    echo
    crypto
    echo
    memory
    if [ "$MODE" != callgrind ] && [ -z "${BENCH_ONLY:-}" ]; then
        echo
        "$ROOT/bench/sts-slow.sh" "$MODULES" "$WORK/sts-slow"
    fi
} > "$REPORT"
echo
cat "$REPORT"

if [ "${BENCH_NO_DOCS:-0}" != 1 ]; then
    DOC="$ROOT/docs/PERFORMANCE.md"
    if [ -f "$DOC" ] && grep -q '<!-- bench:begin -->' "$DOC"; then
        awk -v report="$REPORT" '
            /<!-- bench:begin -->/ { print; while ((getline l < report) > 0) print l; skip = 1; next }
            /<!-- bench:end -->/ { skip = 0 }
            !skip' "$DOC" > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
        log "results written to docs/PERFORMANCE.md"
    else
        log "docs/PERFORMANCE.md has no <!-- bench:begin --> marker: not written"
    fi
fi
