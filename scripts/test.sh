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
python -m pytest -q "$@"
