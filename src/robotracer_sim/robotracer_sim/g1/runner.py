"""Real-time loop of the G1 world: physics steps paced to the wall clock, periodic publishers.

Design notes: docs/design-notes.md (robotracer_sim.g1.runner).
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import gc
import os
import threading
import time

from robotracer_sim.g1.world import G1World


@dataclass
class RunnerStats:
    """Counters of the loop."""

    ticks: int = 0
    overruns: int = 0
    max_tick_gap: float = 0.0  # s, longest wall-clock time between two ticks' publications
    #: The longest gap's anatomy, s: waking up late (scheduling, the GIL), waiting for the
    #: world lock, the physics steps, the publishers.
    worst_gap: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
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


def request_realtime(priority: int) -> str:
    """Ask for ``SCHED_FIFO`` at ``priority`` for the calling thread; say what was granted.

    Args:
        priority: 1..99; 0 asks for nothing.

    Returns:
        ``'SCHED_FIFO priority N'``, ``'normal'``, or ``'normal (... refused: why; ...)'``.

    """
    if priority <= 0 or not hasattr(os, 'sched_setscheduler'):
        return 'normal'
    try:
        # pid 0: the calling thread (Linux schedules threads one by one)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        return (
            f'normal (real-time priority {priority} refused: {exc.strerror}; allow it with '
            'CAP_SYS_NICE or an rtprio limit)'
        )
    return f'SCHED_FIFO priority {priority}'


def request_nice(nice: int) -> str:
    """Set the calling thread's niceness (threads it starts afterwards inherit it); say how.

    Args:
        nice: -20..19; below the current value needs ``CAP_SYS_NICE`` (or root).

    Returns:
        ``'nice N'``, or ``'nice N (M refused: why)'`` with the niceness kept.

    """
    if not hasattr(os, 'setpriority'):
        return 'nice 0'
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # (Linux: who=0 is this thread)
    except OSError as exc:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        return f'nice {current} ({nice} refused: {exc.strerror})'
    return f'nice {nice}'


class RealtimeRunner:
    """Step a world in real time and call publishers at their rates.

    Args:
        world: the world to advance.
        tick_rate: ticks per second (the ``rt/lowstate`` rate), Hz.
        publishers: ``(rate_hz, callback)`` pairs; a rate ≥ ``tick_rate`` means every tick.
        max_lag: the most wall-clock backlog the loop catches up on, s.
        on_error: called with an exception raised by a publisher (the loop goes on).
        priority: ``SCHED_FIFO`` priority of the loop thread (1..99; 0: normal scheduling).
        max_cpu_share: the loop's CPU time per wall-clock time, over ``cpu_window`` s, above
            which it gives up real-time scheduling.
        cpu_window: seconds over which that share is measured.

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
        priority: int = 0,
        max_cpu_share: float = 0.8,
        cpu_window: float = 1.0,
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
        self._lock = getattr(world, 'lock', None) or contextlib.nullcontext()
        self.steps_per_tick = max(1, round(1.0 / (tick_rate * dt)))
        self.period = self.steps_per_tick * dt
        self.tick_rate = 1.0 / self.period
        self._pubs = [(max(1, round(self.tick_rate / r)), cb) for r, cb in publishers]
        if not 0 <= priority <= 99:
            raise ValueError(f'priority must be in 0..99 (SCHED_FIFO), got {priority}')
        self.max_lag = max_lag
        self.on_error = on_error
        self.priority = int(priority)
        self.max_cpu_share = float(max_cpu_share)
        self.cpu_window = float(cpu_window)
        #: How the loop thread is scheduled, in words (set when the thread starts).
        self.scheduling = 'not started'
        self._started = threading.Event()
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread (daemon); returns once its scheduling is settled.

        Everything built so far (the model, the SDK's types, ROS) is moved out of the garbage
        collector's reach first (``gc.freeze``): a full collection walks it in 100-350 ms on a
        loaded 2-core machine, holding the GIL, and ``rt/lowstate`` would stop for as long.
        """
        gc.collect()
        gc.freeze()
        self._thread = threading.Thread(target=self._loop, name='g1_sim_loop', daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    def _set_realtime(self) -> None:
        self.scheduling = request_realtime(self.priority)

    def _drop_realtime(self) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            return
        self.scheduling = (
            f'normal (dropped SCHED_FIFO {self.priority}: the physics loop used more than '
            f'{self.max_cpu_share:.0%} of a CPU; this machine cannot simulate in real time)'
        )

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
        self._set_realtime()
        self._started.set()
        realtime = self.scheduling.startswith('SCHED_FIFO')
        window_wall, window_cpu = time.monotonic(), time.thread_time()
        next_t = time.monotonic()
        last = last_tick = next_t
        late = 0.0
        while not self._stop.is_set():
            if not self._running.is_set():
                self._running.wait()
                next_t = last = last_tick = time.monotonic()
                continue
            t0 = time.monotonic()
            with self._lock:  # (re-entrant: step takes it again) to tell lock waits apart
                t_locked = time.monotonic()
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
            if now - last_tick > st.max_tick_gap:
                st.max_tick_gap = now - last_tick
                st.worst_gap = (late, t_locked - t0, t1 - t_locked, now - t1)
            last_tick = now
            st.wall_time += now - last
            last = now
            if now - next_t > self.max_lag:
                st.overruns += 1
                next_t = now
            if realtime and now - window_wall >= self.cpu_window:
                cpu = time.thread_time()
                if (cpu - window_cpu) / (now - window_wall) > self.max_cpu_share:
                    self._drop_realtime()
                    realtime = False
                window_wall, window_cpu = now, cpu
            delay = next_t - now
            late = 0.0
            if delay > 0:
                self._stop.wait(delay)
                late = max(0.0, time.monotonic() - next_t)


class PeriodicCalls:
    """Call callbacks at their own rates from one thread (wall clock, no catching up).

    The G1 node publishes its ROS state topics (joint states, odometry, status, clock) from
    here instead of rclpy timers: this one thread can run real-time just below the physics
    loop (its work is short and bounded), so it is never preempted while it holds the GIL or
    the world lock the physics thread needs; the rclpy executor sleeps in ``rcl_wait`` until a
    service call arrives.

    Args:
        calls: ``(rate_hz, callback)`` pairs.
        on_error: called with an exception raised by a callback (the thread goes on).
        name: the thread's name.
        priority: ``SCHED_FIFO`` priority of the thread (0: normal). Its work is short and
            bounded; running it real-time (below the physics loop) keeps it from being
            preempted while it holds the GIL or the world lock the physics thread waits for.

    Raises:
        ValueError: a rate is not positive.

    """

    def __init__(
        self,
        calls: list[tuple[float, Callable[[], None]]],
        on_error: Callable[[Exception], None] | None = None,
        name: str = 'periodic_calls',
        priority: int = 0,
    ) -> None:
        for rate, _ in calls:
            if not rate > 0:
                raise ValueError(f'rates must be > 0 Hz, got {rate}')
        self._calls = [(1.0 / rate, cb) for rate, cb in calls]
        self.on_error = on_error
        self.priority = int(priority)
        self.scheduling = 'not started'
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (daemon)."""
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        self.scheduling = request_realtime(self.priority)
        now = time.monotonic()
        due = [now] * len(self._calls)
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (period, cb) in enumerate(self._calls):
                if now < due[i]:
                    continue
                try:
                    cb()
                except Exception as exc:  # noqa: BLE001 - report, keep publishing
                    if self.on_error:
                        self.on_error(exc)
                due[i] = max(due[i] + period, now)  # late: do not hurry to catch up
            self._stop.wait(max(0.0, min(due) - time.monotonic()))
