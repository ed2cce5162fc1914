"""Start and stop ``python -m robotracer_sim.g1.run_peer`` as a child process (tests, benches)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

READY = 'G1_PEER_READY'
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies.

    A crashed test run would otherwise leave its peers running, a third of a core each.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the peer outlives a crashed parent
        pass


def spawn_peer(
    domain: int, log_path: Path, *args: str, interface: str = 'lo', timeout_s: float = 90.0
) -> subprocess.Popen:
    """Start the G1 peer in its own session and return once it printed ``G1_PEER_READY``.

    The peer gets SIGTERM when this process dies.

    Args:
        domain: DDS domain id.
        log_path: where its stdout and stderr go.
        *args: more ``run_peer`` options (``--lowstate-rate``, ...).
        interface: network interface.
        timeout_s: longest wait for the ready line.

    Raises:
        AssertionError: the peer exited or was not ready in time (with its log).
    """
    log_path = Path(log_path)
    cmd = [sys.executable, '-m', 'robotracer_sim.g1.run_peer', '--domain', str(domain)]
    with open(log_path, 'w') as f:
        proc = subprocess.Popen(
            [*cmd, '--interface', interface, *args],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    deadline = time.monotonic() + timeout_s
    while READY not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_peer(proc, signal.SIGKILL)
            raise AssertionError(f'G1 peer did not start:\n{log_path.read_text()}')
        time.sleep(0.2)
    return proc


def stop_peer(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout_s: float = 15.0) -> None:
    """Signal the peer's session (SIGINT: it prints its stats and exits); SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
