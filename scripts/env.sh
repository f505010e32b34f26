# Source this file to enter the project's environment: `source scripts/env.sh`.
# It activates .venv/ (made by scripts/setup.sh) and keeps ROS 2 traffic on this machine.
_masa_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_masa_root/.venv/bin/activate" ]; then
  echo "masa_ros: no .venv yet; run scripts/setup.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_masa_root/.venv/bin/activate"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export MASA_ROOT="$_masa_root"
# Assets live in the checkout; copies of masa_core installed by colcon must find them too.
export MASA_ASSETS="${MASA_ASSETS:-$_masa_root/assets}"
# Fast DDS: a large shared-memory segment so camera-sized images reach other processes (docs/ros.md).
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_masa_root/config/fastdds_profile.xml}"
# The ROS 2 wheels live in the venv; the colcon overlay (scripts/setup_ros.sh) adds masa_ros.msg.
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$VIRTUAL_ENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
if [ -f "$_masa_root/install/setup.bash" ]; then
  case $- in *u*) _masa_nounset=1 ;; *) _masa_nounset=0 ;; esac
  set +u  # colcon's setup.bash reads unset variables
  # shellcheck disable=SC1091
  source "$_masa_root/install/setup.bash"
  [ "$_masa_nounset" = 1 ] && set -u
  unset _masa_nounset
fi
unset _masa_root
