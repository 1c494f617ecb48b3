#!/usr/bin/env bash
# The demo of the whole product, on loopback: a real authorization server
# (oidc-provider from npm, nginx-conf/demo/idp.mjs), nginx with the module
# (nginx-conf/demo.conf) and a backend.  Gets tokens from the authorization
# server and prints curl lines, each followed by its answer: a JWT checked
# with the IdP's keys, an opaque token introspected (then from the cache),
# a token exchanged for a narrower one, an STS exchange, 401 and 403, and
# an outage: a second authorization server (the same idp.mjs), used only by
# /down/, answers, is stopped, and the same curl line then gets 503 with
# Retry-After.  Called by `./build.sh demo`.
#   run-demo.sh <nginx binary> <modules dir> <port>
# Ports: <port> gateway, +1 backend, +2 authorization server, +3 the second
# authorization server (stopped during the demo).
# DEMO_ONESHOT=1: show the answers and stop (used by the tests).
set -euo pipefail

NGINX=$1
MODULES=$2
PORT=${3:-8080}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF_DIR=$(dirname "$HERE")
ROOT=$(cd "$CONF_DIR/.." && pwd)
PREFIX=${DEMO_PREFIX:-$ROOT/build/demo}
BACKEND_PORT=${DEMO_BACKEND_PORT:-$((PORT + 1))}
IDP_PORT=${DEMO_IDP_PORT:-$((PORT + 2))}
DOWN_PORT=${DEMO_DOWN_PORT:-$((PORT + 3))}
IDP_DIR=${DEMO_IDP_DIR:-$ROOT/build/demo-idp}

command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "the demo needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }

# the authorization server: installed from npm on first use
mkdir -p "$IDP_DIR"
cp "$HERE/package.json" "$HERE/idp.mjs" "$IDP_DIR/"
if [ ! -f "$IDP_DIR/node_modules/oidc-provider/package.json" ]; then
    echo "installing oidc-provider from npm into $IDP_DIR" >&2
    (cd "$IDP_DIR" && npm install --no-audit --no-fund --loglevel=error >&2)
fi

rm -rf "$PREFIX/logs" "$PREFIX/tmp"
mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/conf"
ln -sfn "$MODULES" "$PREFIX/modules"
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$PORT/g" \
    -e "s/127\.0\.0\.1:8081/127.0.0.1:$BACKEND_PORT/g" \
    -e "s/127\.0\.0\.1:8082/127.0.0.1:$IDP_PORT/g" \
    -e "s/127\.0\.0\.1:8083/127.0.0.1:$DOWN_PORT/g" \
    "$CONF_DIR/demo.conf" > "$PREFIX/conf/demo.conf"

IDP_PID=
DOWN_PID=
NGINX_PID=
stop() {
    [ -z "$NGINX_PID" ] || { kill -QUIT "$NGINX_PID"; wait "$NGINX_PID"; } 2>/dev/null || true
    [ -z "$IDP_PID" ] || { kill "$IDP_PID"; wait "$IDP_PID"; } 2>/dev/null || true
    [ -z "$DOWN_PID" ] || { kill "$DOWN_PID"; wait "$DOWN_PID"; } 2>/dev/null || true
    NGINX_PID= IDP_PID= DOWN_PID=
}
trap 'rc=$?; stop; exit $rc' EXIT
trap 'exit 130' INT TERM

(cd "$IDP_DIR" && exec node idp.mjs "$IDP_PORT") > "$PREFIX/logs/idp-server.log" 2>&1 &
IDP_PID=$!
IDP="http://127.0.0.1:$IDP_PORT"
# the second authorization server, only for /down/: stopped below
(cd "$IDP_DIR" && exec node idp.mjs "$DOWN_PORT") > "$PREFIX/logs/idp-server-2.log" 2>&1 &
DOWN_PID=$!
DOWN_IDP="http://127.0.0.1:$DOWN_PORT"

"$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/demo.conf" -t -q
"$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/demo.conf" &
NGINX_PID=$!

for _ in $(seq 1 100); do
    curl -fs "$IDP/.well-known/openid-configuration" >/dev/null 2>&1 \
        && curl -fs "$DOWN_IDP/.well-known/openid-configuration" >/dev/null 2>&1 \
        && curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
    kill -0 "$IDP_PID" 2>/dev/null || { cat "$PREFIX/logs/idp-server.log" >&2; echo "the authorization server did not start" >&2; exit 1; }
    kill -0 "$DOWN_PID" 2>/dev/null || { cat "$PREFIX/logs/idp-server-2.log" >&2; echo "the second authorization server did not start" >&2; exit 1; }
    kill -0 "$NGINX_PID" 2>/dev/null || { echo "nginx did not start" >&2; exit 1; }
    sleep 0.1
done

# token <client> <secret> <form...>: an access token of the authorization
# server ($TOKEN_AT: of another one)
token() {
    local client=$1 secret=$2
    shift 2
    curl -fsS -u "$client:$secret" "${TOKEN_AT:-$IDP}/token" -d grant_type=client_credentials "$@" \
        | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
JWT=$(token demo-app demo-app-secret -d resource=https://api.demo.test -d "scope=api:read api:write")
JWT_READ=$(token demo-reader demo-reader-secret -d resource=https://api.demo.test -d scope=api:read)
OPAQUE=$(token demo-app demo-app-secret -d "scope=api:read api:write")
REVOKED=$(token demo-app demo-app-secret -d "scope=api:read api:write")
curl -fsS -u demo-app:demo-app-secret "$IDP/token/revocation" -d "token=$REVOKED" >/dev/null
OUTAGE=$(TOKEN_AT=$DOWN_IDP token demo-app demo-app-secret -d "scope=api:read")
[ -n "$JWT" ] && [ -n "$JWT_READ" ] && [ -n "$OPAQUE" ] && [ -n "$OUTAGE" ] \
    || { echo "no token from the authorization server" >&2; exit 1; }
# a JWT with the IdP's header and claims, signed by another key
FORGED="${JWT%.*}.$(printf 'forged-signature-%0300d' 0 | openssl base64 -A | tr '+/' '-_' | tr -d '=')"

GW="http://127.0.0.1:$PORT"
# show <heading> <path> [token]: prints the curl line, runs exactly that line
# and prints the answer's status line, challenge and the backend's reply
show() {
    local line="curl -i $GW$2"
    [ -z "${3:-}" ] || line="$line -H \"Authorization: Bearer $3\""
    printf '\n# %s\n%s\n' "$1" "$line"
    eval "$line" -s | tr -d '\r' | grep -E '^(HTTP/|WWW-Authenticate|Retry-After|backend:)' || true
}

cat <<INTRO
NginxOAuth demo: the gateway on $GW, the backend on 127.0.0.1:$BACKEND_PORT,
oidc-provider (the authorization server) on $IDP, a second one for the
outage on $DOWN_IDP.
Logs: $PREFIX/logs/ (error.log, access.log, idp.log: the gateway's calls to
the authorization servers, idp-server.log, idp-server-2.log).  Tokens live 10 minutes; get new
ones as the script does, e.g. an opaque one:
curl -s -u demo-app:demo-app-secret $IDP/token -d grant_type=client_credentials -d 'scope=api:read api:write'
INTRO

show "a JWT access token of the IdP, checked with its JWKS (auth_jwt_key_request): 200" \
    /jwt/orders "$JWT"
show "an opaque token, introspected at the IdP (RFC 7662): 200" /introspect/orders "$OPAQUE"
show "the same token again, answered from the introspection cache (no IdP call): 200" \
    /introspect/orders "$OPAQUE"
printf '\n# introspection calls the gateway made so far (%s): %s\n' \
    "$PREFIX/logs/idp.log" "$(grep -c ' /_introspect ' "$PREFIX/logs/idp.log" || true)"
show "exchanged (RFC 8693) for a narrower token that the backend checks: 200" \
    /exchange/list "$OPAQUE"
show "the same exchange through the STS module (STSExchange otx): 200" /sts/list "$OPAQUE"
show "no token: 401" /jwt/orders
show "a forged JWT (the IdP's header and claims, a bad signature): 401" /jwt/orders "$FORGED"
show "a revoked opaque token (introspection: inactive): 401" /introspect/orders "$REVOKED"
show "a token without the api:write scope on /jwt/write/: 403" /jwt/write/orders "$JWT_READ"
show "/down/ introspects at the second authorization server ($DOWN_IDP): 200" \
    /down/orders "$OUTAGE"
# the outage: stop the second authorization server for good
kill "$DOWN_PID"
wait "$DOWN_PID" 2>/dev/null || true
STOPPED=$DOWN_PID
DOWN_PID=
if curl -s -o /dev/null "$DOWN_IDP/.well-known/openid-configuration"; then
    echo "the second authorization server still answers" >&2
    exit 1
fi
printf '\n# the second authorization server (pid %s) is stopped: nothing listens on %s\n' \
    "$STOPPED" "$DOWN_IDP"
show "the same line again, now that its IdP is stopped (Retry-After): 503" \
    /down/orders "$OUTAGE"

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
    exit 0
fi
echo
echo "Running; Ctrl-C stops nginx and the authorization server."
wait "$NGINX_PID"
