#!/usr/bin/env bash
# Starts (idempotently) the real services the test suites use, and writes their addresses to
# target/test-services.env for the test runs to source:
#   - PostgreSQL 15 from Debian's packages: a throw-away cluster on 127.0.0.1:$PG_PORT
#   - the test OpenID Providers (tests/idp): two issuers on 127.0.0.1:4011 and :4012
#   - dockerd from Debian's docker.io, as a single-node swarm with the `proxy` network and a
#     FROM-scratch busybox image (potluck-test/busybox:1, also tagged :2), since no registry is reachable;
#     it also listens on 127.0.0.1:$DOCKER_TLS_PORT with TLS client certificates (a throw-away CA)
#   - sshd on 127.0.0.1:$SSH_PORT accepting a throw-away key for root: the Docker API over SSH
#     and SFTP backup repositories
#   - moto's S3 server on 127.0.0.1:$S3_PORT (from scripts/setup.sh's venv), for S3 repositories
#   - an SMTP server on 127.0.0.1:$SMTP_PORT (aiosmtpd, tests/smtp/server.py): STARTTLS with the
#     throw-away CA's certificate, one account, accepted messages as JSON files in $RUN/smtp-spool
#   scripts/test-services.sh [start|stop]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=${POTLUCK_TEST_RUN_DIR:-/tmp/potluck-test-services}
PG_PORT=${PG_PORT:-55432}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
ENV_FILE=$ROOT/target/test-services.env
DOCKER_TLS_PORT=${DOCKER_TLS_PORT:-23760}
SSH_PORT=${SSH_PORT:-22022}
S3_PORT=${S3_PORT:-29000}
SMTP_PORT=${SMTP_PORT:-29025}
SMTP_USER=potluck-test
SMTP_PASSWORD=smtp-test-password
AIOSMTPD=${TOOLS_ROOT:-$HOME/.cargo}/aiosmtpd
MOTO=${TOOLS_ROOT:-$HOME/.cargo}/moto
TLS=$RUN/docker-tls
SSH=$RUN/ssh
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

# A CA, a server certificate for 127.0.0.1, a client certificate it signed, and a client
# certificate from another CA (which the engine must refuse).
make_tls() {
  [ -s "$TLS/cert.pem" ] && [ -s "$TLS/rogue/cert.pem" ] && return
  rm -rf "$TLS"; mkdir -p "$TLS/rogue"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  ( cd "$TLS"
    openssl req -x509 "${ec[@]}" -keyout ca-key.pem -out ca.pem -days 3650 -subj /CN=potluck-test-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile server.ext -out server-cert.pem 2>/dev/null
    openssl req "${ec[@]}" -keyout key.pem -out client.csr -subj /CN=potluck 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile client.ext -out cert.pem 2>/dev/null
    cd rogue
    openssl req -x509 "${ec[@]}" -keyout ca-key.pem -out ca.pem -days 3650 -subj /CN=rogue-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout key.pem -out client.csr -subj /CN=rogue 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile ../client.ext -out cert.pem 2>/dev/null )
  log "made TLS certificates in $TLS"
}

tls_up() {
  curl -sf --cacert "$TLS/ca.pem" --cert "$TLS/cert.pem" --key "$TLS/key.pem" \
    "https://127.0.0.1:$DOCKER_TLS_PORT/_ping" >/dev/null
}

start_docker() {
  local D=/usr/bin/docker
  make_tls
  if $D info >/dev/null 2>&1 && ! tls_up; then
    # An engine started without the TLS listener (by hand, or an older harness): restart it.
    log "restarting dockerd with the TLS listener"
    pkill -x dockerd || true
    wait_for 60 bash -c '! pgrep -x dockerd' || { echo "dockerd does not stop" >&2; exit 1; }
  fi
  if ! $D info >/dev/null 2>&1; then
    setsid dockerd --host unix:///var/run/docker.sock --host "tcp://127.0.0.1:$DOCKER_TLS_PORT" \
      --tlsverify --tlscacert "$TLS/ca.pem" --tlscert "$TLS/server-cert.pem" --tlskey "$TLS/server-key.pem" \
      >"$RUN/dockerd.log" 2>&1 < /dev/null &
    wait_for 60 $D info || { tail -n 30 "$RUN/dockerd.log"; exit 1; }
    wait_for 30 tls_up || { tail -n 30 "$RUN/dockerd.log"; exit 1; }
    log "dockerd started (TLS on :$DOCKER_TLS_PORT)"
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

# sshd with its own host key and configuration, accepting only a throw-away key for root;
# `docker system dial-stdio` on the far side reaches the same engine.
start_sshd() {
  mkdir -p "$SSH" /run/sshd
  [ -s "$SSH/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$SSH/host_ed25519"
  [ -s "$SSH/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C potluck-test -f "$SSH/id_ed25519"
  cp "$SSH/id_ed25519.pub" "$SSH/authorized_keys"
  # SFTP too: backup repositories over SFTP are tested against it.
  local config
  config=$(cat <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSH/host_ed25519
PidFile $SSH/sshd.pid
AuthorizedKeysFile $SSH/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CONF
)
  if [ -f "$SSH/sshd.pid" ] && kill -0 "$(cat "$SSH/sshd.pid")" 2>/dev/null; then
    if [ "$config" = "$(cat "$SSH/sshd_config" 2>/dev/null)" ]; then log "sshd already on :$SSH_PORT"; return; fi
    kill "$(cat "$SSH/sshd.pid")"; sleep 0.5   # started with an older configuration
  fi
  printf '%s\n' "$config" > "$SSH/sshd_config"
  # The client trusts exactly this host key (no trust on first use in the tests).
  mkdir -p ~/.ssh && touch ~/.ssh/known_hosts
  ssh-keygen -q -R "[127.0.0.1]:$SSH_PORT" >/dev/null 2>&1 || true
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$SSH/host_ed25519.pub")" >> ~/.ssh/known_hosts
  /usr/sbin/sshd -f "$SSH/sshd_config" -E "$SSH/sshd.log"
  wait_for 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SSH_PORT" || { cat "$SSH/sshd.log"; exit 1; }
  log "sshd started on :$SSH_PORT"
}

# moto's S3 server keeps its buckets in memory: a restart starts empty, as each test makes its own.
start_s3() {
  if curl -fs "http://127.0.0.1:$S3_PORT/moto-api/" >/dev/null; then log "S3 (moto) already on :$S3_PORT"; return; fi
  [ -x "$MOTO/bin/moto_server" ] || { echo "moto is not installed: run WITH_TEST_SERVICES=1 scripts/setup.sh" >&2; exit 1; }
  setsid "$MOTO/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$RUN/s3.log" 2>&1 < /dev/null &
  echo $! > "$RUN/s3.pid"
  wait_for 30 curl -fs "http://127.0.0.1:$S3_PORT/moto-api/" || { cat "$RUN/s3.log"; exit 1; }
  log "S3 (moto) started on :$S3_PORT"
}

smtp_up() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$SMTP_PORT && head -c 3 <&3 | grep -q 220" 2>/dev/null; }

start_smtp() {
  if smtp_up; then log "SMTP already on :$SMTP_PORT"; return; fi
  [ -x "$AIOSMTPD/bin/python" ] || { echo "aiosmtpd is not installed: run WITH_TEST_SERVICES=1 scripts/setup.sh" >&2; exit 1; }
  make_tls
  mkdir -p "$RUN/smtp-spool"
  setsid "$AIOSMTPD/bin/python" tests/smtp/server.py 127.0.0.1 "$SMTP_PORT" "$RUN/smtp-spool" \
    "$TLS/server-cert.pem" "$TLS/server-key.pem" "$SMTP_USER" "$SMTP_PASSWORD" >"$RUN/smtp.log" 2>&1 < /dev/null &
  echo $! > "$RUN/smtp.pid"
  wait_for 30 smtp_up || { cat "$RUN/smtp.log"; exit 1; }
  log "SMTP started on :$SMTP_PORT"
}

case "${1:-start}" in
  start)
    start_postgres
    start_idp
    start_s3
    start_smtp
    if [ "${WITH_DOCKER:-1}" = 1 ]; then start_docker; start_sshd; fi
    cat > "$ENV_FILE" <<ENV
export POTLUCK_TEST_POSTGRES_URL=postgres://potluck@127.0.0.1:$PG_PORT/postgres
export POTLUCK_TEST_IDP_A=http://127.0.0.1:4011
export POTLUCK_TEST_IDP_B=http://127.0.0.1:4012
export POTLUCK_TEST_SHARED=$ROOT/../shared
export POTLUCK_TEST_DOCKER_TLS=127.0.0.1:$DOCKER_TLS_PORT
export POTLUCK_TEST_DOCKER_TLS_DIR=$TLS
export POTLUCK_TEST_SSH=root@127.0.0.1:$SSH_PORT
export POTLUCK_TEST_SSH_KEY=$SSH/id_ed25519
export POTLUCK_TEST_S3=http://127.0.0.1:$S3_PORT
export POTLUCK_TEST_SMTP=127.0.0.1:$SMTP_PORT
export POTLUCK_TEST_SMTP_USER=$SMTP_USER
export POTLUCK_TEST_SMTP_PASSWORD=$SMTP_PASSWORD
export POTLUCK_TEST_SMTP_SPOOL=$RUN/smtp-spool
ENV
    log "addresses in $ENV_FILE"
    ;;
  stop)
    [ -f "$RUN/idp.pid" ] && kill "$(cat "$RUN/idp.pid")" 2>/dev/null || true
    [ -f "$RUN/s3.pid" ] && kill "$(cat "$RUN/s3.pid")" 2>/dev/null || true
    [ -f "$RUN/smtp.pid" ] && kill "$(cat "$RUN/smtp.pid")" 2>/dev/null || true
    [ -f "$SSH/sshd.pid" ] && kill "$(cat "$SSH/sshd.pid")" 2>/dev/null || true
    [ -d "$RUN/pg" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null 2>&1 || true
    log "stopped (dockerd is left running)"
    ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
