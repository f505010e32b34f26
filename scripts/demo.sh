#!/usr/bin/env bash
# The main job on its built-in default: set everything up, then replay the bundled TUD-Campus clip
# as a camera topic through the real tracker node over DDS (ROS 2 from PyPI wheels), record its
# TrackedObjectArray messages to an MCAP bag, and turn them into MOTChallenge results, HOTA/IDF1
# against the clip's ground truth and an annotated MP4 under runs/ros_demo/.
# Without a CUDA GPU the node uses config/masa_cpu.yaml (masa_mnv2_lite, 512-pixel model input).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
cd "$ROOT"
python -m masa_ros.tools.demo "$@"
