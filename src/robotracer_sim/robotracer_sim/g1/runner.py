"""Real-time loop of the G1 world: physics steps paced to the wall clock, periodic publishers.

One thread advances :class:`~robotracer_sim.g1.world.G1World` in ticks of ``1 / tick_rate``
seconds (a tick is one or more 2 ms physics steps) and, after each tick, calls the
publishers whose period has elapsed (``rt/lowstate`` every tick, hand state and odometry
slower). When the machine cannot keep up, the loop never tries to catch up more than
``max_lag`` seconds: it drops the backlog, counts an overrun and runs slower than real time
(the real-time factor in :attr:`RealtimeRunner.stats` says by how much).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import threading
import time

from robotracer_sim.g1.world import G1World


@dataclass
class RunnerStats:
    """Counters of the loop."""

    ticks: int = 0
    overruns: int = 0
    sim_time: float = 0.0  # s simulated since start
    wall_time: float = 0.0  # s of wall clock while running (paused time excluded)
    step_time: float = 0.0  # s of wall clock spent in physics steps

    @property
    def real_time_factor(self) -> float:
        """Simulated seconds per wall-clock second (1.0 = real time)."""
        return self.sim_time / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def physics_capacity(self) -> float:
        """Simulated seconds per second of physics computation (headroom above 1.0)."""
        return self.sim_time / self.step_time if self.step_time > 0 else 0.0


class RealtimeRunner:
    """Step a world in real time and call publishers at their rates.

    Args:
        world: the world to advance.
        tick_rate: ticks per second (the ``rt/lowstate`` rate), Hz.
        publishers: ``(rate_hz, callback)`` pairs; a rate ≥ ``tick_rate`` means every tick.
        max_lag: the most wall-clock backlog the loop catches up on, s.
        on_error: called with an exception raised by a publisher (the loop goes on).

    Raises:
        ValueError: a rate is not positive or the tick is shorter than one physics step.

    """

    def __init__(
        self,
        world: G1World,
        tick_rate: float,
        publishers: list[tuple[float, Callable[[], None]]] = (),
        max_lag: float = 0.05,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        dt = world.model.opt.timestep
        if not tick_rate > 0 or 1.0 / tick_rate < dt - 1e-12:
            raise ValueError(
                f'tick_rate must be in (0, {1.0 / dt:.0f}] Hz (one {dt * 1000:.0f} ms physics '
                f'step per tick at most), got {tick_rate}'
            )
        for rate, _ in publishers:
            if not rate > 0:
                raise ValueError(f'publisher rates must be > 0 Hz, got {rate}')
        self.world = world
        self.steps_per_tick = max(1, round(1.0 / (tick_rate * dt)))
        self.period = self.steps_per_tick * dt
        self.tick_rate = 1.0 / self.period
        self._pubs = [(max(1, round(self.tick_rate / r)), cb) for r, cb in publishers]
        self.max_lag = max_lag
        self.on_error = on_error
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread (daemon)."""
        self._thread = threading.Thread(target=self._loop, name='g1_sim_loop', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop and wait for the thread."""
        self._stop.set()
        self._running.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        """Freeze simulation and publishing (the process stays up)."""
        self._running.clear()

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        self._running.set()

    @property
    def paused(self) -> bool:
        """Whether the loop is paused."""
        return not self._running.is_set()

    def _loop(self) -> None:
        next_t = time.monotonic()
        last = next_t
        while not self._stop.is_set():
            if not self._running.is_set():
                self._running.wait()
                next_t = last = time.monotonic()
                continue
            t0 = time.monotonic()
            self.world.step(self.steps_per_tick)
            t1 = time.monotonic()
            st = self.stats
            st.step_time += t1 - t0
            st.sim_time += self.period
            st.ticks += 1
            for every, cb in self._pubs:
                if st.ticks % every == 0:
                    try:
                        cb()
                    except Exception as exc:  # noqa: BLE001 - report, keep simulating
                        if self.on_error:
                            self.on_error(exc)
            next_t += self.period
            now = time.monotonic()
            st.wall_time += now - last
            last = now
            if now - next_t > self.max_lag:
                st.overruns += 1
                next_t = now
            delay = next_t - now
            if delay > 0:
                self._stop.wait(delay)
