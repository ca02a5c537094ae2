#!/usr/bin/env bash
# Create (or reuse) the venv the mergekit cross-check runs mergekit in.
#
# Why a separate venv: mergekit 0.1.5 pins its own dependency ranges (transformers 5.x,
# peft, accelerate, immutables, ...) and must not change the harness environment pinned by
# constraints/ci.txt.  To avoid a second torch install, the venv is layered on the
# harness venv: a .pth file appends the harness venv's site-packages *after* the venv's
# own, so pip installs only what the harness venv lacks (mergekit, immutables,
# sentencepiece; pinned by constraints/mergekit.txt) and refuses if a pin clashes.
#
# Idempotent: a venv that already imports mergekit 0.1.5 is left untouched.
#
#   scripts/setup_mergekit.sh                       # -> ./.venv-mergekit on top of ./.venv
#   MERGEKIT_VENV=/path HARNESS_VENV=/path/.venv scripts/setup_mergekit.sh
set -euo pipefail

VERSION="0.1.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MERGEKIT_VENV:-$ROOT/.venv-mergekit}"
BASE="${HARNESS_VENV:-$ROOT/.venv}"

have() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import mergekit.merge  # noqa: F401
sys.exit(0 if version("mergekit") == sys.argv[1] else 1)
PY
}

if have; then
    echo "mergekit $VERSION already installed in $VENV"
    exit 0
fi
[ -x "$BASE/bin/python" ] || { echo "error: harness venv $BASE not found (run scripts/setup.sh)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $BASE/bin/python"
    "$BASE/bin/python" -m venv "$VENV"
fi
base_site="$("$BASE/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
venv_site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$base_site" > "$venv_site/zz_harness_venv.pth"
"$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints/mergekit.txt" "mergekit==$VERSION"
have || { echo "error: mergekit $VERSION does not import from $VENV" >&2; exit 1; }
echo "mergekit $VERSION installed in $VENV"
