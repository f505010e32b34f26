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
unset _masa_root
