"""Approximate time synchronisation of several message streams (ROS-free).

``message_filters`` is not on PyPI, so the node uses this small synchroniser: each stream keeps
a short queue of (stamp, message); when a message arrives, the synchroniser looks, in every
other stream, for the message closest in time to it, and if the whole set spans no more than
``slop_s`` it emits the set and discards everything up to it in every queue. Messages that can
never match fall out of the bounded queues.

For diagnosis (why is there no fresh set?) it also remembers, per stream, when the last message
arrived (``last_received_s``, on a monotonic clock) and its stamp (``last_stamp_s``), and can
report the tightest set its queues could still form (:meth:`ApproximateSynchronizer.closest_set`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
import threading
import time
from typing import Any, Generic, TypeVar

K = TypeVar('K', bound=Hashable)


class ApproximateSynchronizer(Generic[K]):
    """Match messages of several streams whose stamps lie within ``slop_s`` of each other.

    Thread-safe: ``add`` may be called from several callback threads.
    """

    def __init__(
        self,
        streams: Sequence[K],
        *,
        slop_s: float,
        queue_size: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a synchroniser.

        Args:
            streams: names of the streams (e.g. ``['color', 'depth', 'info']``); at least one.
            slop_s: the largest stamp spread of a matched set, seconds (>= 0).
            queue_size: messages kept per stream (>= 1).
            clock: monotonic time of arrival, seconds (for ``last_received_s``).

        Raises:
            ValueError: no streams, duplicate names, negative slop or queue size < 1.
        """
        if not streams or len(set(streams)) != len(streams):
            raise ValueError('streams must be a non-empty list of distinct names')
        if slop_s < 0 or queue_size < 1:
            raise ValueError('slop_s must be >= 0 and queue_size >= 1')
        self.streams = list(streams)
        self.slop_s = float(slop_s)
        self._queues: dict[K, deque[tuple[float, Any]]] = {
            s: deque(maxlen=queue_size) for s in streams
        }
        self.received: dict[K, int] = {s: 0 for s in streams}
        self.last_received_s: dict[K, float | None] = {s: None for s in streams}
        self.last_stamp_s: dict[K, float | None] = {s: None for s in streams}
        self.matched = 0
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, stream: K, stamp_s: float, msg: Any) -> dict[K, tuple[float, Any]] | None:
        """Add a message; return a matched set when this message completes one.

        Args:
            stream: which stream the message belongs to.
            stamp_s: its header stamp, seconds.
            msg: the message (opaque).

        Returns:
            ``{stream: (stamp_s, msg)}`` for every stream, or None when nothing matched yet.

        Raises:
            KeyError: unknown stream.
        """
        with self._lock:
            queue = self._queues[stream]
            self.received[stream] += 1
            self.last_received_s[stream] = self._clock()
            self.last_stamp_s[stream] = float(stamp_s)
            queue.append((float(stamp_s), msg))
            chosen: dict[K, tuple[float, Any]] = {stream: (float(stamp_s), msg)}
            for other, q in self._queues.items():
                if other == stream:
                    continue
                if not q:
                    return None
                chosen[other] = min(q, key=lambda item: abs(item[0] - stamp_s))
            stamps = [s for s, _ in chosen.values()]
            if max(stamps) - min(stamps) > self.slop_s:
                return None
            for name, q in self._queues.items():
                keep = chosen[name][0]
                while q and q[0][0] <= keep:
                    q.popleft()
            self.matched += 1
            return chosen

    def missing(self) -> list[K]:
        """Streams that have received nothing yet."""
        with self._lock:
            return [s for s, n in self.received.items() if n == 0]

    def silent_for(self) -> dict[K, float | None]:
        """Seconds since each stream's last message (None: nothing received yet)."""
        with self._lock:
            now = self._clock()
            return {
                s: None if t is None else max(0.0, now - t)
                for s, t in self.last_received_s.items()
            }

    def closest_set(self) -> dict[K, float] | None:
        """The stamps of the tightest set the queued messages could form (diagnosis).

        Every queued message is tried as the anchor, with the closest message of each other
        stream; the set with the smallest spread wins.

        Returns:
            ``{stream: stamp_s}``, or None while some stream's queue is empty.
        """
        with self._lock:
            if any(not q for q in self._queues.values()):
                return None
            best: dict[K, float] | None = None
            best_spread = float('inf')
            for q in self._queues.values():
                for anchor, _ in q:
                    chosen = {
                        name: min((t for t, _ in other), key=lambda t: abs(t - anchor))
                        for name, other in self._queues.items()
                    }
                    spread = max(chosen.values()) - min(chosen.values())
                    if spread < best_spread:
                        best, best_spread = chosen, spread
            return best
