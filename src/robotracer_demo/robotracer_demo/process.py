"""Run ``robotracer launch <robot>`` as a child process: wait for ``ready``, always stop it.

ROS-free. The bringup's output goes to a log file (and is kept in memory for error messages);
:meth:`BringupProcess.stop` sends SIGINT (the supervisor then stops its nodes cleanly), and
kills whatever is left of the process tree after a grace period, so no node outlives the demo.
"""

from __future__ import annotations

from collections import deque
import os
import signal
import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import IO

READY_PREFIX = '[launch] ready:'


class BringupError(RuntimeError):
    """The bringup did not come up (it exited or timed out); the message has its last lines."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (Linux ``/proc``), children first.

    Args:
        pid: the root process.

    Returns:
        Descendant PIDs in breadth-first order; empty where ``/proc`` is not available.
    """
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir('/proc')
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', encoding='utf-8', errors='replace') as f:
                stat = f.read()
        except OSError:
            continue
        # the command name (field 2) may contain spaces: the ppid follows its closing paren
        fields = stat[stat.rfind(')') + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            out.append(child)
            queue.append(child)
    return out


def start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot, ``/proc/PID/stat`` field 22).

    With the PID it identifies a process uniquely, so a PID reused by another process is never
    mistaken for one we started.

    Args:
        pid: the process.

    Returns:
        The start time, or None when the process does not exist.
    """
    try:
        with open(f'/proc/{pid}/stat', encoding='utf-8', errors='replace') as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(')') + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


class BringupProcess:
    """``robotracer launch ROBOT ARGS...`` as a supervised child.

    Args:
        argv: the command, e.g. ``['robotracer', 'launch', 'ur5', 'oracle_port:=25600']``.
        log_path: file that receives the bringup's whole output.
        env: environment of the child (None: inherit).
        echo: also print each line, prefixed (for ``--verbose``).
        grace_s: how long :meth:`stop` lets the nodes shut down cleanly, seconds.
    """

    def __init__(
        self,
        argv: list[str],
        log_path: str,
        env: dict[str, str] | None = None,
        echo: bool = False,
        grace_s: float = 15.0,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.echo = echo
        self.grace_s = grace_s
        self.tail: deque[str] = deque(maxlen=40)
        self.ready_line = ''
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._reader: threading.Thread | None = None
        self._known: dict[int, int | None] = {}

    def start(self) -> BringupProcess:
        """Start the child (in its own session, so a terminal's Ctrl-C reaches us first).

        Returns:
            ``self``.

        Raises:
            BringupError: the command cannot be started.
        """
        self._log = open(self.log_path, 'w', encoding='utf-8')  # noqa: SIM115 - closed in stop()
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            raise BringupError(f'cannot start {" ".join(self.argv)}: {exc}') from exc
        self._reader = threading.Thread(target=self._pump, name='bringup-log', daemon=True)
        self._reader.start()
        return self

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip('\n')
            self.tail.append(line)
            if self._log is not None and not self._log.closed:
                self._log.write(line + '\n')
                self._log.flush()
            if self.echo:
                print(f'  | {line}', flush=True)
            if line.startswith(READY_PREFIX):
                self.ready_line = line
                self._ready.set()

    @property
    def running(self) -> bool:
        """True while the bringup process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait_ready(self, timeout_s: float) -> str:
        """Block until the bringup prints its ready line.

        Args:
            timeout_s: longest wait, seconds.

        Returns:
            The ready line.

        Raises:
            BringupError: it exited or did not get ready in time (with its last log lines).
        """
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.2):
            if not self.running:
                code = self._proc.returncode if self._proc is not None else None
                raise BringupError(
                    f'the bringup exited with code {code} before it was ready; last lines:\n'
                    + self.last_lines()
                )
            if time.monotonic() > deadline:
                raise BringupError(
                    f'the bringup was not ready after {timeout_s:.0f} s; last lines:\n'
                    + self.last_lines()
                )
            self._remember_tree()
        self._remember_tree()
        return self.ready_line

    def _remember_tree(self) -> None:
        if self._proc is not None:
            for pid in descendants(self._proc.pid):
                self._known.setdefault(pid, start_time(pid))

    def last_lines(self, n: int = 15) -> str:
        """The bringup's last ``n`` output lines, indented."""
        return '\n'.join('    ' + line for line in list(self.tail)[-n:])

    def stop(self, grace_s: float | None = None) -> int | None:
        """Stop the bringup: SIGINT, then SIGKILL to whatever of its tree is left.

        Args:
            grace_s: how long the nodes get to shut down cleanly, seconds (None: the
                constructor's ``grace_s``).

        Returns:
            The bringup's exit code (None if it was never started).
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._remember_tree()
            try:
                proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=self.grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        # nodes run in their own sessions: kill any the supervisor could not stop
        for pid, started in self._known.items():
            if started is None or start_time(pid) != started:
                continue  # gone (or the PID now belongs to another process)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self._log is not None:
            self._log.close()
        return proc.returncode

    def __enter__(self) -> BringupProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
