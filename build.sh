#!/usr/bin/env bash
# NginxOAuth: the single entry point.
#
#   ./build.sh            build the managed core and the nginx module
#   ./build.sh demo       build, start oidc-provider (npm) and nginx with
#                         nginx-conf/demo.conf on 127.0.0.1:8080-8083 and
#                         print curl lines (nginx-conf/demo/run-demo.sh);
#                         Ctrl-C stops both
#   ./build.sh test       build and run every test
#   ./build.sh image      build the Docker image (docker/Dockerfile) with the
#                         module installed; tag: nginx-oauth:latest (and
#                         nginx-oauth-redis:latest, docker/redis/, for the
#                         fleet example nginx-conf/fleet/compose.yaml)
#   ./build.sh deb        build, then the Debian binary package
#                         build/deb/libnginx-mod-http-oauth_<version>_<arch>.deb
#                         (packaging/debian/), depending on the nginx ABI the
#                         module was built against
#   ./build.sh bench [--quick | --callgrind]
#                         build, then run the benchmark (bench/run.sh): one
#                         nginx worker, wrk, ratios to a baseline of the same
#                         run, written to docs/PERFORMANCE.md
#   ./build.sh fuzz [--seconds N] [target ...]
#                         fuzz the core's parsers of untrusted input with
#                         SharpFuzz + afl-fuzz (tests/fuzz/run.sh), N seconds
#                         per target (default 60); crash inputs are saved as
#                         regression tests; exit 1 on a crash
#   ./build.sh clean      remove build/
#
# Environment:
#   NGINX_SRC=/path/to/nginx-x.y.z   build against this nginx source tree
#                                    (default: Debian's nginx-dev tree)
#   NGINX_BIN=/path/to/nginx         the nginx the tests and the demo run
#   DEMO_PORT=8080                   port of the demo gateway (the backend,
#                                    the IdP and a second IdP, stopped
#                                    during the demo, follow it)
#   BASE_IMAGE=debian:bookworm-slim  base of the Docker image (its nginx must
#                                    match the nginx the module is built for)
#   IMAGE=nginx-oauth:latest         tag of the Docker image
#   REDIS_IMAGE=nginx-oauth-redis:latest
#                                    tag of the Redis image of the fleet
#                                    example (nginx-conf/fleet/compose.yaml)
#   FUZZ_SECONDS=3                   seconds per fuzz target in ./build.sh test
#   NGINX_ABI=nginx-abi-1.22.1-7     the package's nginx dependency, when
#                                    NGINX_SRC is not Debian's nginx-dev tree
#   NGINX_OAUTH_SKIP_PACKAGE=1       ./build.sh test: skip the package test
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD="$ROOT/build"
MODULES="$BUILD/modules"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# Installs what a fresh Debian 12 machine lacks (root only; otherwise says
# what is missing).
ensure_packages() {
    local want=(nginx nginx-dev clang zlib1g-dev libssl-dev libpcre2-dev
                make openssl curl "$@")
    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages: ${missing[*]} (run as root or install them)"
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # the packaged nginx service is not ours: never leave it running
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop nginx >/dev/null 2>&1 || true
        systemctl disable nginx >/dev/null 2>&1 || true
    fi
    pkill -x nginx >/dev/null 2>&1 || true
}

build_managed() {
    log "managed core (NativeAOT, net9.0)"
    dotnet publish "$ROOT/managed/NginxOAuth.Native" -c Release \
        -o "$BUILD/managed" --nologo -v quiet -clp:ErrorsOnly
    mkdir -p "$MODULES"
    cp "$BUILD/managed/ngx_http_oauth_managed.so" "$MODULES/"
}

build_module() {
    local src=${NGINX_SRC:-/usr/share/nginx/src}
    [ -x "$src/configure" ] || die "no nginx source tree at $src (set NGINX_SRC)"
    local tree="$BUILD/nginx-src"
    local stamp="$BUILD/nginx-src.configured"
    local want cc_opt="" ld_opt=""
    if [ -f "$src/conf_flags" ] && command -v dpkg-buildflags >/dev/null; then
        # Debian's nginx-dev: compile and link as Debian builds its nginx
        # modules (hardened: fortify, stack protector, relro, bindnow)
        # (from $ROOT: -ffile-prefix-map names the directory)
        local get="cd '$ROOT' && DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get"
        cc_opt="$(sh -c "$get CFLAGS") $(sh -c "$get CPPFLAGS")"
        ld_opt="$(sh -c "$get LDFLAGS")"
    fi
    want="$(cd "$src" && pwd) $(md5sum "$ROOT/config" | cut -d' ' -f1) $cc_opt $ld_opt"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "configuring nginx from $src"
        rm -rf "$tree"
        mkdir -p "$tree"
        cp -a "$src/." "$tree/"
        (
            cd "$tree"
            flags=()
            if [ -f conf_flags ]; then
                # Debian's nginx-dev: the flags the packaged nginx was built with
                # shellcheck disable=SC1091
                source ./conf_flags
                flags=("${NGX_CONF_FLAGS[@]}")
                [ -z "$cc_opt" ] || flags+=("--with-cc-opt=$cc_opt" "--with-ld-opt=$ld_opt")
            else
                flags=(--with-compat)
            fi
            ./configure "${flags[@]}" --add-dynamic-module="$ROOT" >"$BUILD/configure.log" 2>&1 \
                || { tail -30 "$BUILD/configure.log"; exit 1; }
        )
        echo "$want" > "$stamp"
    fi
    log "nginx module"
    make -s -C "$tree" -f objs/Makefile modules >"$BUILD/make.log" 2>&1 \
        || { cat "$BUILD/make.log"; die "module build failed"; }
    mkdir -p "$MODULES"
    cp "$tree/objs/ngx_http_oauth_module.so" "$MODULES/"
}

build_all() {
    ensure_packages
    mkdir -p "$BUILD"
    build_managed
    build_module
    log "built: $MODULES/ngx_http_oauth_module.so (+ ngx_http_oauth_managed.so beside it)"
}

# --- Docker -------------------------------------------------------------
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
IMAGE=${IMAGE:-nginx-oauth:latest}
REDIS_IMAGE=${REDIS_IMAGE:-nginx-oauth-redis:latest}

# Makes sure a Docker engine answers. As root, installs docker.io and starts
# dockerd with no bridge and no iptables: containers use host networking
# only, so nothing leaves loopback. Returns 1 (with a reason on stderr) when
# that is impossible.
ensure_docker() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "no Docker engine is running and we are not root" >&2
        return 1
    fi
    command -v dockerd >/dev/null 2>&1 || ensure_packages docker.io
    log "starting dockerd (--bridge=none --iptables=false)"
    mkdir -p "$BUILD"
    nohup dockerd --bridge=none --iptables=false --ip6tables=false \
        >"$BUILD/dockerd.log" 2>&1 </dev/null &
    OWN_DOCKERD=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    # overlay2 is not available everywhere (nested overlayfs): try vfs
    kill "$OWN_DOCKERD" >/dev/null 2>&1 || true
    sleep 1
    log "dockerd did not come up with the default storage driver; trying vfs"
    nohup dockerd --bridge=none --iptables=false --ip6tables=false \
        --storage-driver=vfs >"$BUILD/dockerd.log" 2>&1 </dev/null &
    OWN_DOCKERD=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "dockerd did not start (see $BUILD/dockerd.log)" >&2
    return 1
}

# No registry is reachable here: create the Debian base image locally with
# debootstrap when it is missing (cached by the engine afterwards).
ensure_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    if docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    case "$BASE_IMAGE" in
        debian:bookworm*) ;;
        *) die "base image $BASE_IMAGE is not present and cannot be pulled" ;;
    esac
    command -v debootstrap >/dev/null 2>&1 || ensure_packages debootstrap
    log "creating $BASE_IMAGE with debootstrap (about a minute)"
    local rootfs="$BUILD/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
        >"$BUILD/debootstrap.log" 2>&1 || { tail -20 "$BUILD/debootstrap.log"; die "debootstrap failed"; }
    tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

cmd_image() {
    build_all
    ensure_docker || die "cannot build the image without a Docker engine"
    build_image
}

build_image() {
    ensure_base_image
    local ctx="$BUILD/docker-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/modules"
    cp "$MODULES/ngx_http_oauth_module.so" "$MODULES/ngx_http_oauth_managed.so" "$ctx/modules/"
    cp -r "$ROOT/docker/nginx.conf" "$ROOT/docker/conf.d" "$ctx/"
    log "image $IMAGE (base $BASE_IMAGE)"
    docker build --network host --build-arg BASE_IMAGE="$BASE_IMAGE" \
        -t "$IMAGE" -f "$ROOT/docker/Dockerfile" "$ctx" >"$BUILD/docker-build.log" 2>&1 \
        || { tail -30 "$BUILD/docker-build.log"; die "docker build failed"; }
    # the image's nginx must accept the module
    docker run --rm --network host "$IMAGE" nginx -t >"$BUILD/docker-check.log" 2>&1 \
        || { cat "$BUILD/docker-check.log"; die "the image's nginx rejects the module"; }
    log "built $IMAGE"
    build_redis_image
}

# redis-server from Debian on the same base, for the fleet example
# (nginx-conf/fleet/compose.yaml) and its test (Fleet/ComposeFleetTests.cs)
build_redis_image() {
    log "image $REDIS_IMAGE (base $BASE_IMAGE)"
    docker build --network host --build-arg BASE_IMAGE="$BASE_IMAGE" \
        -t "$REDIS_IMAGE" -f "$ROOT/docker/redis/Dockerfile" "$ROOT/docker/redis" \
        >"$BUILD/docker-redis-build.log" 2>&1 \
        || { tail -30 "$BUILD/docker-redis-build.log"; die "docker build of $REDIS_IMAGE failed"; }
    log "built $REDIS_IMAGE"
}

# --- Debian package -----------------------------------------------------
# A binary package in the style of Debian's libnginx-mod-http-* packages:
# the two .so files in /usr/lib/nginx/modules, the load_module snippet in
# /usr/share/nginx/modules-available, the modules-enabled link managed by the
# maintainer scripts, and a dependency on the exact nginx ABI.
DEB_DIR="$BUILD/deb"
DEB_NAME=libnginx-mod-http-oauth

# The virtual package nginx provides for the ABI the module was built against
# (Debian's nginx Provides: nginx-abi-<upstream>-<n>; nginx-dev records it).
nginx_abi() {
    if [ -n "${NGINX_ABI:-}" ]; then
        echo "$NGINX_ABI"
        return
    fi
    local src=${NGINX_SRC:-/usr/share/nginx/src}
    local vars="$src/debian/libnginx-mod.abisubstvars"
    [ -f "$vars" ] || die "no $vars: set NGINX_ABI (e.g. 'nginx (= 1.26.2-1)') for a non-Debian nginx tree"
    sed -n 's/^nginx:abi=//p' "$vars" | head -1
}

cmd_deb() {
    build_all
    build_deb
}

# prints the path of the package
build_deb() {
    ensure_packages dpkg-dev fakeroot binutils
    local pkg="$ROOT/packaging/debian"
    local version arch abi shlibs
    version=$(dpkg-parsechangelog -l "$pkg/changelog" -S Version)
    arch=$(dpkg --print-architecture)
    abi=$(nginx_abi)
    [ -n "$abi" ] || die "cannot tell the nginx ABI (set NGINX_ABI)"

    local root="$DEB_DIR/root"
    local doc="$root/usr/share/doc/$DEB_NAME"
    rm -rf "$DEB_DIR"
    mkdir -p "$root/DEBIAN" "$root/usr/lib/nginx/modules" \
        "$root/usr/share/nginx/modules-available" "$doc/examples"
    install -m 644 "$MODULES/ngx_http_oauth_module.so" \
        "$MODULES/ngx_http_oauth_managed.so" "$root/usr/lib/nginx/modules/"
    # as dh_strip does; the NativeAOT library is published stripped already
    # (its symbols), only the compilers' notes go
    strip --strip-unneeded --remove-section=.comment --remove-section=.note \
        "$root/usr/lib/nginx/modules/ngx_http_oauth_module.so"
    strip --remove-section=.comment --remove-section=.note \
        "$root/usr/lib/nginx/modules/ngx_http_oauth_managed.so"
    install -m 644 "$pkg/mod-http-oauth.conf" "$root/usr/share/nginx/modules-available/"
    install -m 644 "$pkg/copyright" "$doc/"
    install -D -m 644 "$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/$DEB_NAME"
    gzip -9n -c "$pkg/changelog" > "$doc/changelog.Debian.gz"
    # documentation compressed as Debian policy asks (12.3)
    local f
    for f in "$ROOT/README.md" "$ROOT/ARCHITECTURE.md" "$ROOT"/docs/*.md; do
        gzip -9n -c "$f" > "$doc/$(basename "$f").gz"
    done
    for f in "$ROOT"/nginx-conf/*.conf; do
        [ "$(basename "$f")" = demo.conf ] || install -m 644 "$f" "$doc/examples/"
    done
    chmod 644 "$doc"/*.gz
    find "$root" -type d -exec chmod 755 {} +

    # library dependencies of both .so files, as dh_shlibdeps computes them;
    # the managed library also dlopens libssl (System.Security.Cryptography)
    local shl="$DEB_DIR/shlibs"
    mkdir -p "$shl/debian"
    printf 'Source: nginx-oauth\n\nPackage: %s\nArchitecture: any\n' "$DEB_NAME" > "$shl/debian/control"
    shlibs=$(cd "$shl" && dpkg-shlibdeps -O "$root"/usr/lib/nginx/modules/*.so 2>/dev/null \
        | sed -n 's/^shlibs:Depends=//p')
    shlibs="${shlibs:+$shlibs, }libssl3"

    local size
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
        -e "s/@NGINX_ABI@/$abi/" -e "s/@SHLIBS@/$shlibs/" \
        "$pkg/control.in" > "$root/DEBIAN/control"
    install -m 755 "$pkg/postinst" "$pkg/prerm" "$pkg/postrm" "$root/DEBIAN/"
    (cd "$root" && find usr -type f -exec md5sum {} + | sort -k2) > "$root/DEBIAN/md5sums"
    chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

    local out="$DEB_DIR/${DEB_NAME}_${version}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
    log "built $out (Depends: $abi)"
    echo "$out"
}

cmd_demo() {
    build_all
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        || ensure_packages nodejs npm
    "$ROOT/nginx-conf/demo/run-demo.sh" "$NGINX_BIN" "$MODULES" "${DEMO_PORT:-8080}"
}

cmd_test() {
    build_all
    # the fleet tests (tests/.../Fleet) start a redis-server of their own
    ensure_packages redis-server
    export NGINX_OAUTH_MODULES="$MODULES" NGINX_BIN

    log "tests: unit, ABI and integration (nginx as a local process)"
    local local_rc=0
    NGINX_OAUTH_HOST=local dotnet test "$ROOT/NginxOAuth.sln" -c Release --nologo \
        --logger "console;verbosity=minimal" "$@" || local_rc=$?

    # a short, bounded fuzzing run of every target: CI catches regressions
    log "fuzzing: every target for ${FUZZ_SECONDS:-3}s (tests/fuzz/run.sh)"
    ensure_packages afl++
    local fuzz_rc=0
    "$ROOT/tests/fuzz/run.sh" --ci --seconds "${FUZZ_SECONDS:-3}" || fuzz_rc=$?
    if [ $fuzz_rc -ne 0 ] && [ $local_rc -eq 0 ]; then
        local_rc=$fuzz_rc
    fi

    # the same integration suite against nginx in a container
    local reason=""
    if [ "${NGINX_OAUTH_SKIP_CONTAINER:-0}" = 1 ]; then
        reason="NGINX_OAUTH_SKIP_CONTAINER=1 was set"
    elif ! ensure_docker 2>"$BUILD/docker-reason.log"; then
        reason=$(tail -1 "$BUILD/docker-reason.log")
    fi
    # what ensure_docker did (installing docker.io, starting dockerd)
    grep '^==>' "$BUILD/docker-reason.log" >&2 2>/dev/null || true
    if [ -n "$reason" ]; then
        printf '\n*** SKIPPED: the container run of the integration suite: %s ***\n\n' "$reason" >&2
        return $local_rc
    fi
    build_image
    # the compose example (Fleet/ComposeFleetTests.cs): Debian's docker-compose
    docker compose version >/dev/null 2>&1 || ensure_packages docker-compose
    # the package test (Tests/PackageTests.cs) installs it into $BASE_IMAGE
    local deb=""
    if [ "${NGINX_OAUTH_SKIP_PACKAGE:-0}" != 1 ]; then
        deb=$(build_deb)
    else
        printf '\n*** SKIPPED: the package test: NGINX_OAUTH_SKIP_PACKAGE=1 was set ***\n\n' >&2
    fi
    log "tests: integration (nginx in a container of $IMAGE, Testcontainers; the package in $BASE_IMAGE)"
    local api
    api=$(docker version -f '{{.Server.APIVersion}}' 2>/dev/null || true)
    local rc=0
    NGINX_OAUTH_HOST=container NGINX_OAUTH_IMAGE="$IMAGE" NGINX_OAUTH_REDIS_IMAGE="$REDIS_IMAGE" \
        NGINX_OAUTH_DEB="$deb" NGINX_OAUTH_BASE_IMAGE="$BASE_IMAGE" \
        TESTCONTAINERS_RYUK_DISABLED=true DOCKER_API_VERSION="${api:-1.41}" \
        dotnet test "$ROOT/tests/NginxOAuth.IntegrationTests" -c Release --nologo \
        --logger "console;verbosity=minimal" "$@" || rc=$?
    remove_test_containers
    if [ $local_rc -ne 0 ]; then
        log "the local run or the fuzzing failed (exit $local_rc)"
        return $local_rc
    fi
    return $rc
}

remove_test_containers() {
    local ids
    ids=$(docker ps -aq --filter label=org.nginx-oauth.tests=1 2>/dev/null || true)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}

# dockerd started by this script stops with it
stop_own_dockerd() {
    if [ -n "${OWN_DOCKERD:-}" ]; then
        kill "$OWN_DOCKERD" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$OWN_DOCKERD" 2>/dev/null || break
            sleep 0.25
        done
    fi
}
trap stop_own_dockerd EXIT

case "${1:-build}" in
    build) build_all ;;
    demo) cmd_demo ;;
    test) shift; cmd_test "$@" ;;
    image) cmd_image ;;
    deb) cmd_deb >/dev/null ;;
    bench) shift; build_all; "$ROOT/bench/run.sh" "$@" ;;
    fuzz) shift; ensure_packages afl++; "$ROOT/tests/fuzz/run.sh" "$@" ;;
    clean) rm -rf "$BUILD" ;;
    *) die "unknown command '$1' (build | demo | test | bench | fuzz | image | deb | clean)" ;;
esac
