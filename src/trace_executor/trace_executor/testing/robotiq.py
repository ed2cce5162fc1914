"""A Robotiq gripper behind the Robotiq URCap's socket (port 63352), on 127.0.0.1.

Speaks what the URCap serves on the UR controller (the protocol ur_rtde's Robotiq example and
the URCap's ``rq_*`` script functions use): one command per line, ``SET <VAR> <n> [...]``
answered ``ack``, ``GET <VAR>`` answered ``<VAR> <n>``. The gripper model:

- ``STA`` 0 until ``ACT 1``; then 1 (activating) for ``activation_s``, then 3 (active).
  ``ACT 0`` resets it (``STA`` 0). While not active, go-to requests are ignored.
- ``GTO 1`` with ``POS``/``SPE`` moves the fingers toward ``POS`` (0 open - 255 closed) at a
  speed set by ``SPE`` (255: full stroke in ``stroke_s``); ``PRE`` echoes the request at once.
- ``OBJ`` 0 while moving; 2 if closing stopped on ``object_at`` (an object between the
  fingers), 1 if opening stopped on contact, 3 at the requested position.
- Unknown variables or malformed commands are answered ``?`` (the fault a client must name).
"""

from __future__ import annotations

import socket
import threading
import time

__all__ = ['RobotiqServer']

WRITABLE = ('ACT', 'GTO', 'ATR', 'ADR', 'FOR', 'SPE', 'POS')


class RobotiqServer:
    """The URCap's gripper socket on 127.0.0.1 (module docstring). Call :meth:`close`.

    Args:
        object_at: finger position where closing meets an object (None: nothing to grasp).
        activation_s: activation time, s.
        stroke_s: full stroke time at speed 255, s.
        port: 0 = any free port (see :attr:`port`).
    """

    def __init__(
        self,
        object_at: int | None = None,
        *,
        activation_s: float = 0.2,
        stroke_s: float = 0.3,
        port: int = 0,
    ) -> None:
        self.object_at = object_at
        self.activation_s = activation_s
        self.stroke_s = stroke_s
        self.lock = threading.Lock()
        self.vars = dict.fromkeys(WRITABLE, 0)
        self.vars['SPE'] = 255
        self._activated_at: float | None = None
        self._pos = 0.0
        self._target = 0
        self._moving_since: tuple[float, float] | None = None  # (time, start position)
        self.commands: list[str] = []
        self.server = socket.create_server(('127.0.0.1', port))
        self.port = self.server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    # --- the gripper ---------------------------------------------------------------------
    def _sta(self, now: float) -> int:
        if not self.vars['ACT'] or self._activated_at is None:
            return 0
        return 3 if now - self._activated_at >= self.activation_s else 1

    def _update(self, now: float) -> tuple[float, int]:
        """Finger position and OBJ now."""
        if self._moving_since is None:
            return self._pos, 3 if round(self._pos) == self._target else self._obj_stopped()
        t0, p0 = self._moving_since
        rate = 255.0 / self.stroke_s * max(self.vars['SPE'], 1) / 255.0
        direction = 1.0 if self._target > p0 else -1.0
        p = p0 + direction * rate * (now - t0)
        stop_at = float(self._target)
        if direction > 0 and self.object_at is not None and self.object_at < self._target:
            stop_at = float(self.object_at)
        if (direction > 0 and p >= stop_at) or (direction < 0 and p <= stop_at):
            self._pos, self._moving_since = stop_at, None
            return self._pos, 3 if round(stop_at) == self._target else self._obj_stopped()
        self._pos = p
        return p, 0

    def _obj_stopped(self) -> int:
        return 2 if self._target > self._pos else 1

    def _set(self, name: str, value: int, now: float) -> None:
        self.vars[name] = value
        if name == 'ACT':
            if value:
                self._activated_at = now
            else:
                self._activated_at = None
                self.vars['GTO'] = 0
        if name == 'GTO' and value and self._sta(now) == 3:
            self._update(now)
            self._target = max(0, min(255, self.vars['POS']))
            self._moving_since = (now, self._pos)

    def _get(self, name: str, now: float) -> int | None:
        pos, obj = self._update(now)
        values = {
            'STA': self._sta(now),
            'PRE': self._target if self._sta(now) == 3 else 0,
            'OBJ': obj if self._sta(now) == 3 else 0,
            'FLT': 0,
            'POS': round(pos),
        }
        if name in values:
            return values[name]
        return self.vars.get(name)

    def handle(self, line: str) -> str:
        """One command → its answer."""
        self.commands.append(line)
        words = line.split()
        now = time.monotonic()
        with self.lock:
            if len(words) >= 3 and words[0] == 'SET' and len(words) % 2 == 1:
                pairs = list(zip(words[1::2], words[2::2], strict=True))
                if not all(k in WRITABLE and v.lstrip('-').isdigit() for k, v in pairs):
                    return '?'
                for k, v in pairs:  # GTO last, as the URCap applies it
                    if k != 'GTO':
                        self._set(k, int(v), now)
                for k, v in pairs:
                    if k == 'GTO':
                        self._set(k, int(v), now)
                return 'ack'
            if len(words) == 2 and words[0] == 'GET':
                value = self._get(words[1], now)
                return '?' if value is None else f'{words[1]} {value}'
        return '?'

    # --- the socket ----------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b''
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(1024)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    answer = self.handle(line.decode('ascii', errors='replace').strip())
                    # 'ack' has no line end (ur_rtde's example compares it to b'ack')
                    conn.sendall(answer.encode() if answer == 'ack' else (answer + '\n').encode())

    def close(self) -> None:
        """Stop serving."""
        self._stop.set()
        self.server.close()
