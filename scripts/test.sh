#!/usr/bin/env bash
# The test command: set everything up (idempotent), lint, then run the whole test suite on the CPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
cd "$ROOT"
ruff check .
ruff format --check .
if [ "$#" -gt 0 ]; then
  exec python -m pytest -q "$@"
fi
# The training tests fork (data-loader workers, DDP launcher) and run in a process of their own: in the
# same process, after the OpenVINO backend has run, a later fork crashed the whole run (SIGSEGV).
python -m pytest -q tests/test_training.py
python -m pytest -q --ignore=tests/test_training.py
