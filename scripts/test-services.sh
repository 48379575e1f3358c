#!/usr/bin/env bash
# Starts (idempotently) the real services the test suites use, and writes their addresses to
# target/test-services.env for the test runs to source:
#   - PostgreSQL 15 from Debian's packages: a throw-away cluster on 127.0.0.1:$PG_PORT
#   - the test OpenID Providers (tests/idp): two issuers on 127.0.0.1:4011 and :4012
#   - dockerd from Debian's docker.io, as a single-node swarm with the `proxy` network and a
#     FROM-scratch busybox image (potluck-test/busybox:1, also tagged :2), since no registry is reachable
#   scripts/test-services.sh [start|stop]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=${POTLUCK_TEST_RUN_DIR:-/tmp/potluck-test-services}
PG_PORT=${PG_PORT:-55432}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
ENV_FILE=$ROOT/target/test-services.env
mkdir -p "$RUN" "$ROOT/target"
log() { printf '==> test services: %s\n' "$*"; }

wait_for() { # wait_for SECONDS CMD...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

start_postgres() {
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then log "PostgreSQL already on :$PG_PORT"; return; fi
  local data=$RUN/pg
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"; chown postgres:postgres "$data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -A trust -U potluck --no-sync >/dev/null
  fi
  # Durability is not what the tests measure: fsync off keeps the suite fast.
  touch "$RUN/pg.log"; chown postgres "$RUN/pg.log"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$RUN/pg.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $PG_PORT -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
  log "PostgreSQL started on :$PG_PORT"
}

start_idp() {
  if curl -fs http://127.0.0.1:4011/.well-known/openid-configuration >/dev/null && \
     curl -fs http://127.0.0.1:4012/.well-known/openid-configuration >/dev/null; then
    log "OpenID Providers already up"; return
  fi
  [ -d tests/idp/node_modules/oidc-provider ] || (cd tests/idp && npm ci --no-audit --no-fund --loglevel=error)
  IDP_STATE_DIR=$RUN/idp setsid node tests/idp/server.mjs tests/idp/config.json >"$RUN/idp.log" 2>&1 < /dev/null &
  echo $! > "$RUN/idp.pid"
  wait_for 20 curl -fs http://127.0.0.1:4012/.well-known/openid-configuration || { cat "$RUN/idp.log"; exit 1; }
  log "OpenID Providers started on :4011 and :4012"
}

start_docker() {
  local D=/usr/bin/docker
  if ! $D info >/dev/null 2>&1; then
    setsid dockerd --host unix:///var/run/docker.sock >"$RUN/dockerd.log" 2>&1 < /dev/null &
    wait_for 60 $D info || { tail -n 30 "$RUN/dockerd.log"; exit 1; }
    log "dockerd started"
  fi
  if [ "$($D info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    $D swarm init --advertise-addr 127.0.0.1 >/dev/null
    log "swarm initialised"
  fi
  $D network inspect proxy >/dev/null 2>&1 || $D network create -d overlay --attachable proxy >/dev/null
  if ! $D image inspect potluck-test/busybox:1 >/dev/null 2>&1; then
    local ctx; ctx=$(mktemp -d); cp /bin/busybox "$ctx/"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\nCMD ["/bin/sh"]\n' > "$ctx/Dockerfile"
    DOCKER_BUILDKIT=0 $D build -q -t potluck-test/busybox:1 "$ctx" >/dev/null
    rm -rf "$ctx"
    log "built potluck-test/busybox:1"
  fi
  # A second tag of the same image: an "image upgrade" for the upgrade tests.
  $D image inspect potluck-test/busybox:2 >/dev/null 2>&1 || $D tag potluck-test/busybox:1 potluck-test/busybox:2
}

case "${1:-start}" in
  start)
    start_postgres
    start_idp
    if [ "${WITH_DOCKER:-1}" = 1 ]; then start_docker; fi
    cat > "$ENV_FILE" <<ENV
export POTLUCK_TEST_POSTGRES_URL=postgres://potluck@127.0.0.1:$PG_PORT/postgres
export POTLUCK_TEST_IDP_A=http://127.0.0.1:4011
export POTLUCK_TEST_IDP_B=http://127.0.0.1:4012
export POTLUCK_TEST_SHARED=$ROOT/../shared
ENV
    log "addresses in $ENV_FILE"
    ;;
  stop)
    [ -f "$RUN/idp.pid" ] && kill "$(cat "$RUN/idp.pid")" 2>/dev/null || true
    [ -d "$RUN/pg" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null 2>&1 || true
    log "stopped (dockerd is left running)"
    ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
