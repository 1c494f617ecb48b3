# Shared by the bench scripts (sourced, not run): log and die, the work
# directory and the child processes stopped at exit, a free port.
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
