#!/usr/bin/env bash
# The main job on its built-in default: set everything up, then track people in the bundled
# TUD-Campus clip with the default detector (MediaPipe SSD) and the MASA model, writing
# runs/TUD-Campus/results.txt (MOTChallenge) and runs/TUD-Campus/tracks.mp4, and scoring the
# result against the clip's ground truth. Without a CUDA GPU it uses config/masa_cpu.yaml
# (512-pixel model input) so that it finishes in minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
cd "$ROOT"
config="config/masa.yaml"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || config="config/masa_cpu.yaml"
echo "[demo] masa-track on data/mot15/TUD-Campus with $config"
masa-track data/mot15/TUD-Campus/TUD-Campus.mp4 --config "$config" --gt data/mot15/TUD-Campus/gt/gt.txt "$@"
