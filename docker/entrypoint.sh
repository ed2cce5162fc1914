#!/usr/bin/env bash
# Entry point of the robotracer-ros image: check the required settings, source ROS 2, then the
# workspace, then run the command (by default the headless UR5 simulator bringup, see CMD in
# docker/Dockerfile).
#
#   docker run --rm robotracer-ros:jazzy ros2 launch robotracer_ros g1.launch.py sim:=true
#   docker run --rm -it robotracer-ros:jazzy bash
#
# ROBOTRACER_REQUIRED_ENV: names of variables that must be non-empty (docker/compose.yaml sets
#   it for the real-robot services, e.g. ROBOT_IP). Compose cannot do this check with
#   ${VAR:?}: it interpolates the whole file before it picks a profile's services, so a
#   required robot variable would break `--profile sim` too.
# ROBOTRACER_ROS_SETUP / ROBOTRACER_WS_SETUP override the two setup files (the tests use them).
# No `set -u`: the ROS setup scripts read variables that may be unset.
set -eo pipefail

for name in ${ROBOTRACER_REQUIRED_ENV:-}; do
  if [ -z "${!name:-}" ]; then
    echo "robotracer-entrypoint: $name is required here but not set;" \
      "export it (or put it in docker/.env) and start again -- see docker/README.md" >&2
    exit 2
  fi
done

ROS_SETUP="${ROBOTRACER_ROS_SETUP:-/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash}"
WS_SETUP="${ROBOTRACER_WS_SETUP:-/ws/install/setup.bash}"
for f in "$ROS_SETUP" "$WS_SETUP"; do
  if [ ! -f "$f" ]; then
    echo "robotracer-entrypoint: $f not found (ROS_DISTRO=${ROS_DISTRO:-unset})" >&2
    exit 1
  fi
done
# shellcheck disable=SC1090
source "$ROS_SETUP"
# shellcheck disable=SC1090
source "$WS_SETUP"

exec "$@"
