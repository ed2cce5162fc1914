#!/usr/bin/env bash
# make setup: take a fresh Debian 12 machine (root, Python 3.11, no ROS) to a built workspace.
# Idempotent: every step checks whether it has work to do; a no-op rerun takes seconds.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$VENV/.robotracer-stamps"
PYTHON="${PYTHON:-python3.11}"
APT_PACKAGES=(libegl1 libegl-mesa0 libgl1 cmake g++ make cyclonedds-dev)
T_ALL=$EPOCHREALTIME
mkdir -p "$ROOT/log"
exec 9>"$ROOT/log/.setup.lock"
flock 9 || true

step_start() { STEP="$1"; T0=$EPOCHREALTIME; printf '[setup] %-34s ...\n' "$STEP"; }
step_done() {
  printf '[setup] %-34s %s (%.1f s)\n' "$STEP" "${1:-done}" "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")"
}
fail() {
  printf '[setup] FAILED at step "%s": %s\n' "$STEP" "$1" >&2
  [ -n "${2:-}" ] && printf '[setup]   what to do: %s\n' "$2" >&2
  exit 1
}
hash_of() { sha256sum "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# 1. Python ------------------------------------------------------------------------------
step_start "python 3.11"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
  || fail "no python3 found" "install Python 3.11 (apt install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
[ "$PYVER" = "3.11" ] || fail "found Python $PYVER at $(command -v "$PYTHON"); the ROS 2 Jazzy wheels are cp311 only" \
  "install Python 3.11 and run: PYTHON=/path/to/python3.11 make setup"
step_done "$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"

# 2. apt packages --------------------------------------------------------------------------
step_start "apt packages"
MISSING=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING+=("$p")
done
if [ ${#MISSING[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup]   installing: ${MISSING[*]}"
  $SUDO apt-get update -qq >/dev/null 2>&1 || fail "apt-get update failed" "check the network / apt sources, then rerun make setup"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null \
    || fail "apt-get install ${MISSING[*]} failed" "run it by hand to see the error: apt-get install ${MISSING[*]}"
  step_done "installed ${#MISSING[@]}"
else
  step_done "all present"
fi

# 3. virtual environment ---------------------------------------------------------------------
step_start "virtualenv .venv"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || fail "python -m venv failed" "apt install python3.11-venv"
  step_done "created"
else
  step_done "exists"
fi
mkdir -p "$STAMPS"

# 4. Python packages (pinned) ---------------------------------------------------------------
step_start "python packages (pinned)"
REQ_HASH=$(hash_of requirements/requirements.in requirements/constraints.txt)
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$REQ_HASH" ]; then
  "$VENV/bin/pip" install -q -r requirements/requirements.in -c requirements/constraints.txt \
    >"$STAMPS/pip.log" 2>&1 || {
      tail -5 "$STAMPS/pip.log" >&2
      if grep -qiE "connection|resolve|network|timed out|Could not fetch" "$STAMPS/pip.log"; then
        fail "the package index is unreachable" "check network/proxy settings (pip config list), then rerun make setup"
      fi
      fail "pip install failed (log: $STAMPS/pip.log)" "read the log; if a pin is wrong, fix requirements/constraints.txt"
    }
  echo "$REQ_HASH" >"$STAMPS/pip"
  step_done "installed"
else
  step_done "up to date"
fi

# 4b. Unitree DDS stack (cyclonedds 0.10.2 built against Debian's library, unitree_sdk2py) -----
step_start "unitree DDS stack (G1)"
DDS_HASH=$(hash_of scripts/setup_cyclonedds.sh)
if [ "$(cat "$STAMPS/cyclonedds" 2>/dev/null)" != "$DDS_HASH" ]; then
  bash scripts/setup_cyclonedds.sh "$VENV" >"$STAMPS/cyclonedds.log" 2>&1 || {
    tail -5 "$STAMPS/cyclonedds.log" >&2
    fail "building cyclonedds / installing unitree_sdk2py failed (log: $STAMPS/cyclonedds.log)" \
      "check that cyclonedds-dev is installed (apt-get install cyclonedds-dev), then rerun"
  }
  echo "$DDS_HASH" >"$STAMPS/cyclonedds"
  step_done "installed"
else
  step_done "up to date"
fi

# 5. CMake path workarounds inside .venv ---------------------------------------------------
# The ros-jazzy wheels' CMake exports name the wheel builder's Python (/opt/python/cp311-cp311);
# point them at this Python's headers and the venv's numpy headers instead.
step_start "patch ROS CMake exports"
PY_INC=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NP_INC=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
[ -f "$PY_INC/Python.h" ] || fail "Python headers missing at $PY_INC" "apt install python3.11-dev (or rebuild pyenv Python with headers)"
FILES=$(grep -rl "/opt/python/cp311-cp311" "$VENV/share" --include='*.cmake' 2>/dev/null || true)
if [ -n "$FILES" ]; then
  # shellcheck disable=SC2086
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NP_INC#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$PY_INC#g" $FILES
  step_done "patched $(echo "$FILES" | wc -l) files"
else
  step_done "nothing to patch"
fi

# 6. colcon build -------------------------------------------------------------------------
step_start "colcon build"
# With --symlink-install, Python sources are live; only build inputs need a rebuild.
SRC_HASH=$(find src launch config -type f \( -name package.xml -o -name setup.py -o -name setup.cfg \
  -o -name CMakeLists.txt -o -name __init__.py -o -name '*.msg' -o -name '*.srv' -o -name '*.action' -o -path '*/resource/*' \
  -o -path 'launch/*' -o -path 'config/*' \) -not -path '*/__pycache__/*' -print0 2>/dev/null \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ "$(cat "$STAMPS/colcon" 2>/dev/null)" != "$SRC_HASH" ] || [ ! -f install/setup.bash ]; then
  (
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    export PATH="$VENV/bin:$PATH"
    export LD_LIBRARY_PATH="$VENV/lib:$(ls -d "$VENV"/lib/python3.11/site-packages/ros_*.libs | tr '\n' ':')${LD_LIBRARY_PATH:-}"
    "$VENV/bin/colcon" --log-base log build --symlink-install \
      --event-handlers console_cohesion- summary+ status- \
      --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF -Wno-dev >"$STAMPS/colcon.log" 2>&1
  ) || {
    tail -20 "$STAMPS/colcon.log" >&2
    PKG=$(grep -oE "Failed +<<< [a-z_]+" "$STAMPS/colcon.log" | awk '{print $3}' | head -1)
    fail "colcon build failed${PKG:+ in package $PKG}" "read log/latest_build/${PKG:-<package>}/stdout_stderr.log"
  }
  echo "$SRC_HASH" >"$STAMPS/colcon"
  step_done "built"
else
  step_done "up to date"
fi

printf '[setup] workspace ready in %.1f s — run: source setup.bash\n' "$(awk "BEGIN{print $EPOCHREALTIME - $T_ALL}")"
