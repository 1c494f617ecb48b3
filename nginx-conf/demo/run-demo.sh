#!/usr/bin/env bash
# Starts the demo gateway (nginx-conf/demo.conf) and prints curl lines with a
# valid, an expired and a forged token.  Called by `./build.sh demo`.
#   run-demo.sh <nginx binary> <modules dir> <port>
# DEMO_ONESHOT=1: show the three answers and stop (used by the tests).
set -euo pipefail

NGINX=$1
MODULES=$2
PORT=${3:-8080}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF_DIR=$(dirname "$HERE")
PREFIX=${DEMO_PREFIX:-$(cd "$CONF_DIR/.." && pwd)/build/demo}

mkdir -p "$PREFIX/logs" "$PREFIX/tmp" "$PREFIX/conf"
ln -sfn "$MODULES" "$PREFIX/modules"
# the demo key files sit beside the (generated) configuration
ln -sfn "$HERE" "$PREFIX/conf/demo"
BACKEND_PORT=${DEMO_BACKEND_PORT:-$((PORT + 1))}
sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" \
    -e "s/127.0.0.1:8081/127.0.0.1:$BACKEND_PORT/" "$CONF_DIR/demo.conf" \
    > "$PREFIX/conf/demo.conf"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# mint <private key> <exp offset seconds>
mint() {
    local key=$1 exp=$(( $(date +%s) + $2 ))
    local header payload sig
    header=$(printf '{"alg":"RS256","typ":"JWT","kid":"demo-2026"}' | b64url)
    payload=$(printf '{"iss":"https://demo.nginx-oauth.test","sub":"alice","roles":["reader","writer"],"iat":%d,"exp":%d}' \
        "$(date +%s)" "$exp" | b64url)
    sig=$(printf '%s.%s' "$header" "$payload" \
        | openssl dgst -sha256 -sign "$key" -binary | b64url)
    printf '%s.%s.%s' "$header" "$payload" "$sig"
}

FORGER="$PREFIX/forger.pem"
[ -f "$FORGER" ] || openssl genpkey -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -out "$FORGER" 2>/dev/null

VALID=$(mint "$HERE/demo-private.pem" 3600)
EXPIRED=$(mint "$HERE/demo-private.pem" -3600)
FORGED=$(mint "$FORGER" 3600)

"$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/demo.conf" -t -q
"$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/demo.conf" &
NGINX_PID=$!
trap 'kill -QUIT $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
    kill -0 $NGINX_PID 2>/dev/null || { echo "nginx did not start" >&2; exit 1; }
    sleep 0.1
done

URL="http://127.0.0.1:$PORT/api"
show() {
    printf '\n# %s\ncurl -i %s -H "Authorization: Bearer %s"\n' "$1" "$URL" "$2"
    curl -s -i "$URL" -H "Authorization: Bearer $2" | sed -n '1p;/^WWW-Authenticate/p;/^hello/p'
}

echo "NginxOAuth demo gateway on http://127.0.0.1:$PORT (logs: $PREFIX/logs)"
show "a valid token: 200" "$VALID"
show "an expired token: 401" "$EXPIRED"
show "a forged token (signed by another key): 401" "$FORGED"
printf '\n# no token at all: 401\ncurl -i %s\n' "$URL"
curl -s -i "$URL" | sed -n '1p;/^WWW-Authenticate/p'

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
    exit 0
fi
echo
echo "nginx runs in the foreground; Ctrl-C stops it."
wait $NGINX_PID
