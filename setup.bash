# shellcheck shell=bash
# Source this file (`source setup.bash`) for a shell in which rclpy, the built interfaces and
# every console entry point of the workspace work — like install/setup.bash of a ROS workspace.
# It activates .venv, adds the ROS wheels' native library folders, and sources the colcon
# install space. Run `make setup` first.

_RT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
_RT_VENV="$_RT_ROOT/.venv"
if [ ! -x "$_RT_VENV/bin/python" ] || [ ! -f "$_RT_ROOT/install/setup.bash" ]; then
  echo "robotracer: the workspace is not built yet — run 'make setup' in $_RT_ROOT first" >&2
  unset _RT_ROOT _RT_VENV
  return 1 2>/dev/null || exit 1
fi

# 1. The virtual environment (Python, ROS 2 Jazzy wheels, colcon, the rest of the pins).
VIRTUAL_ENV_DISABLE_PROMPT=${VIRTUAL_ENV_DISABLE_PROMPT:-1}
# shellcheck disable=SC1091
source "$_RT_VENV/bin/activate"

# 2. Native libraries of the ROS wheels (rclpy needs them on LD_LIBRARY_PATH).
_RT_LIBS="$_RT_VENV/lib"
for _d in "$_RT_VENV"/lib/python3.*/site-packages/ros_*.libs; do _RT_LIBS="$_RT_LIBS:$_d"; done
case ":${LD_LIBRARY_PATH:-}:" in
  *":$_RT_VENV/lib:"*) ;;
  *) export LD_LIBRARY_PATH="$_RT_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac

# 3. The ROS environment the wheels do not set themselves.
export ROS_DISTRO=jazzy
export ROS_VERSION=2
export ROS_PYTHON_VERSION=3
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$_RT_VENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$_RT_VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
# MuJoCo renders offscreen through EGL on headless machines.
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"

# 4. The colcon install space (interfaces, packages, share/, ament index). colcon's scripts
# read unset variables, so relax `set -u` while sourcing them (and restore it after).
case $- in *u*) _RT_NOUNSET=1; set +u ;; *) _RT_NOUNSET= ;; esac
# shellcheck disable=SC1091
source "$_RT_ROOT/install/setup.bash"
[ -n "$_RT_NOUNSET" ] && set -u

# 5. Console entry points: colcon installs them into install/<pkg>/lib/<pkg> (for `ros2 run`);
# put those on PATH so `robotracer`, `perception_node`, ... work directly.
for _d in "$_RT_ROOT"/install/*/lib/*/; do
  _pkg="$(basename "$(dirname "$(dirname "$_d")")")"
  [ "$(basename "$_d")" = "$_pkg" ] || continue
  case ":$PATH:" in *":${_d%/}:"*) ;; *) PATH="${_d%/}:$PATH" ;; esac
done
export PATH
export ROBOTRACER_WS="$_RT_ROOT"
unset _RT_ROOT _RT_VENV _RT_LIBS _RT_NOUNSET _d _pkg
