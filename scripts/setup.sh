#!/usr/bin/env bash
# make setup: take a fresh Debian 12 / Ubuntu 22.04 / Ubuntu 24.04 machine (root or sudo,
# Python 3.10, 3.11 or 3.12, no ROS) to a built workspace, from the public package index alone.
#   make setup                      robot side: ROS 2 Jazzy wheels, perception, executors, sim
#   make setup EXTRAS=local-model   + torch and transformers (the in-process model backend)
#   PYTHON=python3.12 make setup    choose the interpreter (default: the newest supported found)
# Idempotent: every step checks whether it has work to do; a no-op rerun takes seconds.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$VENV/.robotracer-stamps"
# The ros-jazzy wheels (rclpy, the message packages) are built for CPython 3.10, 3.11 and 3.12.
SUPPORTED_PYTHONS="3.10 3.11 3.12"
EXTRAS="${EXTRAS:-}"
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
pyver_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

for extra in $EXTRAS; do
  [ -f "requirements/$extra.in" ] || {
    STEP="options"
    fail "unknown EXTRAS entry '$extra'" "use EXTRAS=local-model (the files are requirements/<name>.in)"
  }
done

# 1. Python ------------------------------------------------------------------------------
step_start "python (3.10 / 3.11 / 3.12)"
if [ -x "$VENV/bin/python" ]; then
  # the venv exists: keep its interpreter (a different PYTHON needs a new venv)
  VENV_VER=$(pyver_of "$VENV/bin/python") || fail "$VENV/bin/python does not run" "rm -rf .venv, then rerun make setup"
  if [ -n "${PYTHON:-}" ] && [ "$(pyver_of "$PYTHON")" != "$VENV_VER" ]; then
    fail ".venv was made with Python $VENV_VER, PYTHON=$PYTHON is another" "rm -rf .venv, then rerun PYTHON=$PYTHON make setup"
  fi
  PYTHON="$VENV/bin/python"
elif [ -z "${PYTHON:-}" ]; then
  # the system's python3 (Ubuntu 24.04: 3.12, Debian 12: 3.11, Ubuntu 22.04: 3.10), else the
  # newest supported python3.X that runs
  PYTHON=python3
  case " $SUPPORTED_PYTHONS " in
    *" $(pyver_of python3) "*) ;;
    *) for v in 3.12 3.11 3.10; do pyver_of "python$v" >/dev/null && { PYTHON="python$v"; break; }; done ;;
  esac
fi
PYVER=$(pyver_of "$PYTHON") \
  || fail "no Python found (PYTHON=$PYTHON)" \
    "install Python 3.12, 3.11 or 3.10 (apt install python3 python3-venv python3-dev) or set PYTHON=/path/to/python3.X"
case " $SUPPORTED_PYTHONS " in
  *" $PYVER "*) ;;
  *) fail "found Python $PYVER at $(command -v "$PYTHON"); the ROS 2 Jazzy wheels exist for CPython ${SUPPORTED_PYTHONS// /, } only" \
       "install one of them and run: PYTHON=/path/to/python3.12 make setup" ;;
esac
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
  "$PYTHON" -m venv "$VENV" || fail "python -m venv failed" "apt install python$PYVER-venv"
  step_done "created"
else
  step_done "exists"
fi
mkdir -p "$STAMPS"

# 4. Python packages (pinned) ---------------------------------------------------------------
# pip_install NAME: requirements/NAME.in with the pins of requirements/constraints.txt, once per
# change of those files (a stamp per file: switching EXTRAS on and off reinstalls nothing).
pip_install() {
  local name="$1" stamp="$STAMPS/pip-$1" hash
  hash=$(hash_of "requirements/$name.in" requirements/constraints.txt)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    step_done "up to date"
    return
  fi
  "$VENV/bin/pip" install -q -r "requirements/$name.in" -c requirements/constraints.txt \
    >"$STAMPS/pip-$name.log" 2>&1 || {
      tail -5 "$STAMPS/pip-$name.log" >&2
      if grep -qiE "connection|network|timed out|Could not fetch|Max retries" "$STAMPS/pip-$name.log"; then
        fail "the package index is unreachable" "check network/proxy settings (pip config list), then rerun make setup"
      fi
      fail "pip install -r requirements/$name.in failed (log: $STAMPS/pip-$name.log)" \
        "read the log; if a pin is wrong, fix requirements/constraints.txt (make lock)"
    }
  echo "$hash" >"$stamp"
  step_done "installed"
}
step_start "python packages (pinned)"
pip_install requirements
for extra in $EXTRAS; do
  step_start "python packages: $extra"
  pip_install "$extra"
done

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
# The ros-jazzy wheels' CMake exports name the wheel builder's Python
# (/opt/python/cp3XX-cp3XX, XX = this Python); point them at this Python's headers and the
# venv's numpy headers instead.
step_start "patch ROS CMake exports"
PY_INC=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NP_INC=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
[ -f "$PY_INC/Python.h" ] || fail "Python headers missing at $PY_INC" "apt install python$PYVER-dev (or rebuild pyenv Python with headers)"
FILES=$(grep -rlE "/opt/python/cp3[0-9]+-cp3[0-9]+" "$VENV/share" --include='*.cmake' 2>/dev/null || true)
if [ -n "$FILES" ]; then
  # shellcheck disable=SC2086
  sed -i -E -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_?core/include#$NP_INC#g" \
         -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PY_INC#g" $FILES
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
    export LD_LIBRARY_PATH="$VENV/lib:$(ls -d "$VENV"/lib/python3.*/site-packages/ros_*.libs | tr '\n' ':')${LD_LIBRARY_PATH:-}"
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
