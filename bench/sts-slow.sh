#!/usr/bin/env bash
# The non-blocking property of the STS exchange, measured (called by
# bench/run.sh; also runs alone: bench/sts-slow.sh [MODULES_DIR] [WORK_DIR]).
#
# One nginx worker, an STS on loopback that answers every token request
# after DELAY seconds, N concurrent exchanges with distinct source tokens
# (so the cache and single-flight cannot help), and one unrelated static
# request sent while they are all outstanding.  Prints a markdown table:
# the batch's wall time as a multiple of the STS delay (a worker that
# blocked on each call would need N x), and the static request's latency.
#
# Environment: STS_SLOW_N (50), STS_SLOW_DELAY (1.0), NGINX_BIN.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES=$(cd "${1:-$ROOT/build/modules}" && pwd)
WORK=${2:-$(mktemp -d /tmp/nginx-oauth-sts-slow.XXXXXX)}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
N=${STS_SLOW_N:-50}
DELAY=${STS_SLOW_DELAY:-1.0}

mkdir -p "$WORK/www"
chmod 755 "$WORK" "$WORK/www"
echo ok > "$WORK/www/ok.txt"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
STS_PORT=$(free_port)

# the slow STS: RFC 8693 answers, each after DELAY seconds, many at once
cat > "$WORK/sts.py" <<PY
import http.server, json, time, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0'))).decode()
        src = urllib.parse.parse_qs(body).get('subject_token', [''])[0]
        time.sleep($DELAY)
        out = json.dumps({"access_token": "t-" + src, "token_type": "Bearer", "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512
S(('127.0.0.1', $STS_PORT), H).serve_forever()
PY

cat > "$WORK/nginx.conf" <<CONF
load_module $MODULES/ngx_http_oauth_module.so;
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location /x/ {
            STSExchange otx http://127.0.0.1:$STS_PORT/token "auth=none&client_id=bench";
            STSVariables \$http_x_source \$target;
            alias $WORK/www/;
        }
        location /static/ { alias $WORK/www/; }
    }
}
CONF

python3 "$WORK/sts.py" & STS_PID=$!
"$NGINX_BIN" -p "$WORK" -c "$WORK/nginx.conf" & NGINX_PID=$!
trap 'kill $NGINX_PID $STS_PID 2>/dev/null || true' EXIT

for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/static/ok.txt" \
        && curl -s -o /dev/null -X POST -d subject_token=up "http://127.0.0.1:$STS_PORT/token" \
        && break
    sleep 0.1
done

# warm the worker's managed core with one exchange
curl -s -o /dev/null -H "X-Source: warm" "http://127.0.0.1:$PORT/x/ok.txt"

CURLS=()
start=$(date +%s.%N)
for i in $(seq "$N"); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "X-Source: user-$i-$RANDOM" \
        "http://127.0.0.1:$PORT/x/ok.txt" > "$WORK/code-$i.txt" &
    CURLS+=($!)
done
sleep 0.3
static=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/static/ok.txt")
wait "${CURLS[@]}" || true
end=$(date +%s.%N)
cat "$WORK"/code-*.txt > "$WORK/codes.txt"

ok=$(grep -c '^200$' "$WORK/codes.txt" || true)

awk -v n="$N" -v d="$DELAY" -v s="$start" -v e="$end" -v st="$static" -v ok="$ok" 'BEGIN {
    w = e - s
    print "Slow STS (one worker, STS answers after " d " s, distinct source tokens):"
    print ""
    print "| concurrent exchanges | 200s | wall time s | x STS delay | a blocking worker would need | static request during them, ms |"
    print "|---|---|---|---|---|---|"
    printf "| %d | %d | %.2f | %.2f | %.0f x | %.1f |\n", n, ok, w, w / d, n, st * 1000
}'
