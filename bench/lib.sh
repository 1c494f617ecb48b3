# Shared by the bench scripts (sourced, not run): log and die, the work
# directory and the child processes stopped at exit, a free port, the
# local IdP's configuration.
# The sourcing script sets BENCH_TAG (its name in error messages) first.

log() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_TAG:-bench}" "$*" >&2; exit 1; }

# bench_workdir NAME KEEP: a new directory /tmp/nginx-oauth-NAME.* in WORK,
# removed at exit unless KEEP is 1; the scripts append the pids of the
# processes they start to PIDS, stopped at exit in reverse order of start
# (a gateway before its IdP)
bench_workdir() {
    WORK=$(mktemp -d "/tmp/nginx-oauth-$1.XXXXXX")
    chmod 755 "$WORK"   # workers run as an unprivileged user
    BENCH_KEEP_WORK=$2
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local i p
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        p=${PIDS[$i]}
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || continue
        wait "$p" 2>/dev/null || true
    done
    sleep 0.3
    if [ "$BENCH_KEEP_WORK" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $(( 20000 + RANDOM % 20000 ))
}

# bench_idp_config FILE: the local IdP, a plain nginx (no module) of its
# own with one worker, on IDP_PORT, answering fixed JSON: introspection
# (active until EXP), the key set of WORK/tokens, discovery metadata and a
# token endpoint
bench_idp_config() {
    cat > "$1" <<EOF
worker_processes 1;
daemon off;
pid $WORK/idp.pid;
error_log $WORK/idp-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$IDP_PORT backlog=4096;
        default_type application/json;
        location = /introspect {
            return 200 '{"active":true,"sub":"user-0","scope":"read write","exp":$EXP}';
        }
        location = /jwks { alias $WORK/tokens/keys.jwks; }
        location = /.well-known/openid-configuration {
            return 200 '{"issuer":"https://idp.bench","jwks_uri":"https://idp.bench/jwks"}';
        }
        location = /token {
            return 200 '{"access_token":"exchanged-token-0123456789","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}';
        }
    }
}
EOF
}
