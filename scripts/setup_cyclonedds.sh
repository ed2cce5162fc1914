#!/usr/bin/env bash
# Install the Unitree DDS stack into .venv: cyclonedds (Python) 0.10.2 built against Debian's
# cyclonedds-dev 0.10.2, and unitree-sdk2py-dimos (a PyPI build of the official
# unitree_sdk2_python with the G1 clients).
#
# Why a build: cyclonedds==0.10.2 (the version unitree_sdk2py needs; newer Python bindings speak
# a different wire/type layer) has no cp311 wheel. Its setup.py finds the C library through
# CYCLONEDDS_HOME, a folder with include/, bin/ and lib/ (libddsc.so, libcycloneddsidl.so). We
# make that folder inside .venv out of links to Debian's files.
#
# Idempotent: exits at once when `import cyclonedds, unitree_sdk2py` already works in .venv.
# Needs: apt package cyclonedds-dev (scripts/setup.sh installs it), a C compiler, PyPI access.
# Usage: bash scripts/setup_cyclonedds.sh [VENV]    (default: <repo>/.venv)
set -uo pipefail

CYCLONEDDS_VERSION=0.10.2
UNITREE_SDK_VERSION=1.0.3
RICH_CLICK_VERSION=1.9.9

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PY="$VENV/bin/python"
say() { printf '[cyclonedds] %s\n' "$*"; }
fail() {
  printf '[cyclonedds] FAILED: %s\n' "$1" >&2
  [ -n "${2:-}" ] && printf '[cyclonedds]   what to do: %s\n' "$2" >&2
  exit 1
}

[ -x "$PY" ] || fail "no Python at $PY" "create the virtualenv first (make setup)"

if "$PY" - "$CYCLONEDDS_VERSION" "$UNITREE_SDK_VERSION" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
import cyclonedds.domain  # noqa: F401  (loads the C library)
import unitree_sdk2py.core.channel  # noqa: F401
sys.exit(0 if (version('cyclonedds'), version('unitree-sdk2py-dimos')) == tuple(sys.argv[1:])
         else 1)
EOF
then
  say "cyclonedds $CYCLONEDDS_VERSION and unitree-sdk2py-dimos $UNITREE_SDK_VERSION already installed"
  exit 0
fi

# 1. Debian's C library and headers ----------------------------------------------------------
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null \
  || echo x86_64-linux-gnu)
LIBDIR="/usr/lib/$MULTIARCH"
[ -f /usr/include/dds/dds.h ] && [ -e "$LIBDIR/libddsc.so" ] \
  || fail "Debian's cyclonedds-dev is not installed (no /usr/include/dds/dds.h or $LIBDIR/libddsc.so)" \
          "apt-get install -y cyclonedds-dev   (or run make setup, which installs it)"
DEB_VERSION=$(dpkg-query -W -f='${Version}' cyclonedds-dev 2>/dev/null || echo unknown)
case "$DEB_VERSION" in
  "$CYCLONEDDS_VERSION"*) ;;
  *) fail "cyclonedds-dev is $DEB_VERSION, the Python binding needs the C library $CYCLONEDDS_VERSION" \
          "install Debian 12's cyclonedds-dev ($CYCLONEDDS_VERSION-2)";;
esac
command -v gcc >/dev/null || fail "no C compiler (gcc)" "apt-get install -y g++ make"

# 2. CYCLONEDDS_HOME: links to Debian's files, inside the venv ------------------------------
HOME_DIR="$VENV/cyclonedds-home"
say "linking Debian's cyclonedds $DEB_VERSION into $HOME_DIR"
rm -rf "$HOME_DIR"
mkdir -p "$HOME_DIR/lib" "$HOME_DIR/bin" || fail "cannot create $HOME_DIR"
# /usr/include holds dds/, ddsc/, idl/, idlc/; dds/features.h sits in the multiarch include
# folder, which gcc searches by default.
ln -s /usr/include "$HOME_DIR/include"
for f in "$LIBDIR"/libddsc.so* "$LIBDIR"/libcycloneddsidl.so*; do
  ln -s "$f" "$HOME_DIR/lib/"
done
ln -s "$LIBDIR/cmake" "$HOME_DIR/lib/cmake"
[ -x /usr/bin/idlc ] && ln -s /usr/bin/idlc "$HOME_DIR/bin/idlc"

# 3. pip ----------------------------------------------------------------------------------
LOG="$VENV/cyclonedds-build.log"
say "building cyclonedds==$CYCLONEDDS_VERSION against it (log: $LOG, ~1 min)"
CYCLONEDDS_HOME="$HOME_DIR" "$VENV/bin/pip" install --no-binary cyclonedds \
  "cyclonedds==$CYCLONEDDS_VERSION" "rich-click==$RICH_CLICK_VERSION" >"$LOG" 2>&1 || {
    tail -15 "$LOG" >&2
    fail "pip install cyclonedds==$CYCLONEDDS_VERSION failed (log: $LOG)" \
         "check PyPI access and that cyclonedds-dev $CYCLONEDDS_VERSION and gcc are installed"
  }
# --no-deps: the wheel asks for opencv-python, which would shadow the workspace's
# opencv-python-headless; the SDK imports cv2 only in its video clients.
say "installing unitree-sdk2py-dimos==$UNITREE_SDK_VERSION"
"$VENV/bin/pip" install --no-deps "unitree-sdk2py-dimos==$UNITREE_SDK_VERSION" >>"$LOG" 2>&1 || {
    tail -15 "$LOG" >&2
    fail "pip install unitree-sdk2py-dimos==$UNITREE_SDK_VERSION failed (log: $LOG)" \
         "check PyPI access"
  }

"$PY" -c 'import cyclonedds.domain, unitree_sdk2py.core.channel' >>"$LOG" 2>&1 || {
  tail -15 "$LOG" >&2
  fail "installed, but 'import cyclonedds, unitree_sdk2py' fails (log: $LOG)" \
       "check that $HOME_DIR/lib/libddsc.so resolves (ls -lL $HOME_DIR/lib)"
}
say "ready: cyclonedds $CYCLONEDDS_VERSION (Debian libddsc), unitree-sdk2py-dimos $UNITREE_SDK_VERSION"
