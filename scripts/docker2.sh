#!/usr/bin/env bash
# A second Docker engine on this machine, for the multi-engine sandbox test (docs/scaling.md).
#
#   bash scripts/docker2.sh start    # idempotent: start it (if down) and load the sandbox image
#   bash scripts/docker2.sh stop     # stop it (SIGTERM via its own pidfile)
#   bash scripts/docker2.sh status   # exit 0 when it answers
#   bash scripts/docker2.sh host     # print its DOCKER_HOST value
#
# It has its own socket, data root, exec root (so its own managed containerd), pidfile and
# config file; like the default engine (scripts/setup.sh) it runs without a bridge or
# iptables, since sandbox containers use --network none.  It never touches the default
# daemon: everything it signals is read from its own pidfile.
set -euo pipefail

ROOT="${HARNESS_DOCKER2_ROOT:-/tmp/gh-docker2}"
HOST="unix://$ROOT/docker.sock"
PIDFILE="$ROOT/dockerd.pid"
IMAGE="${HARNESS_SANDBOX_IMAGE:-gate-harness-sandbox:latest}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { echo "[docker2] $*" >&2; }
die() { say "error: $*"; exit 1; }
d2() { docker -H "$HOST" "$@"; }
up() { d2 info >/dev/null 2>&1; }

running_pid() {  # the pid of our dockerd if its pidfile names a live process
  [ -f "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  if ! up && pid="$(running_pid)"; then
    say "dockerd $pid is not answering (shutting down?); waiting for it to exit"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "dockerd $pid neither answers nor exits; stop it first"
  fi
  if ! up; then
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found; run scripts/setup.sh first"
    $SUDO rm -f "$PIDFILE"  # its process is gone (checked above)
    $SUDO mkdir -p "$ROOT/data" "$ROOT/exec"
    [ -f "$ROOT/daemon.json" ] || echo '{}' | $SUDO tee "$ROOT/daemon.json" >/dev/null
    say "starting a second dockerd at $HOST (log: $ROOT/dockerd.log)"
    # --shutdown-timeout 1: on stop, containers get SIGKILL after 1 s (the sandbox driver is
    # PID 1 and ignores SIGTERM), so a stopped engine drops its containers at once
    $SUDO sh -c "nohup dockerd -H '$HOST' --data-root '$ROOT/data' --exec-root '$ROOT/exec' \
      --pidfile '$PIDFILE' --config-file '$ROOT/daemon.json' --bridge=none --iptables=false \
      --ip-masq=false --shutdown-timeout 1 >>'$ROOT/dockerd.log' 2>&1 &"
    for _ in $(seq 1 60); do up && break; sleep 1; done
    up || die "the second dockerd did not start; see $ROOT/dockerd.log"
  fi
  want="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null)" \
    || die "$IMAGE is not on the default engine; run: harness sandbox build"
  have="$(d2 image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    say "loading $IMAGE into the second engine"
    docker save "$IMAGE" | d2 load -q >/dev/null
  fi
  echo "$HOST"
}

stop() {
  if pid="$(running_pid)"; then
    say "stopping the second dockerd (pid $pid)"
    $SUDO kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "pid $pid still running after 30 s"
  fi
  return 0
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) up ;;
  host) echo "$HOST" ;;
  *) die "usage: $0 start|stop|status|host" ;;
esac
