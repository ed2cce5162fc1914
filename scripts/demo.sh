#!/usr/bin/env bash
# make demo / make demo-g1: the simulator demo (robotracer_demo/).
#   bash scripts/demo.sh ur5 [--out DIR] [--only N ...] [--verbose]    (make demo)
#   bash scripts/demo.sh g1                                              (make demo-g1)
# Brings the simulated robot up headless (robotracer launch <robot>), runs the demo
# instructions, writes out/demo/ (out/demo-g1/), prints a table; exit code != 0 if an
# instruction failed, or the robot's executor is not installed yet.
set -euo pipefail
cd "$(dirname "$0")/.."
robot="${1:-ur5}"
shift || true
# shellcheck disable=SC1091
source setup.bash
export MUJOCO_GL="${MUJOCO_GL:-egl}"
start=$(date +%s.%N)
set +e
python -m robotracer_demo "$robot" "$@"
code=$?
set -e
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v r="$robot" -v c="$code" \
  'BEGIN { printf "[demo] demo %s: %.1f s wall clock, exit code %d\n", r, e - s, c }'
exit "$code"
