"""The G1 simulator's real-time loop and its periodic publisher thread (ROS-free)."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from robotracer_sim.g1.runner import PeriodicCalls, RealtimeRunner, request_realtime


class StandInWorld:
    """A world whose physics step costs ``step_s`` of wall clock (2 ms steps).

    ``busy``: the step computes (uses CPU) rather than waits.
    """

    def __init__(self, step_s: float = 0.0, busy: bool = False) -> None:
        self.model = SimpleNamespace(opt=SimpleNamespace(timestep=0.002))
        self.step_s = step_s
        self.busy = busy
        self.steps = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.busy:
            end = time.thread_time() + self.step_s
            while time.thread_time() < end:
                pass
        elif self.step_s:
            time.sleep(self.step_s)


def test_runner_ticks_publishes_and_says_how_it_is_scheduled():
    world = StandInWorld()
    ticks = []
    runner = RealtimeRunner(
        world, 250.0, [(250.0, lambda: ticks.append(time.monotonic()))], priority=5
    )
    runner.start()
    try:
        assert gc.get_freeze_count() > 0, 'start-up objects are out of the collector reach'
        time.sleep(0.5)
    finally:
        runner.stop()
    s = runner.scheduling
    assert s == 'SCHED_FIFO priority 5' or s.startswith('normal (real-time priority 5 refused')
    assert 60 <= len(ticks) <= 160 and world.steps == 2 * runner.stats.ticks
    assert 0.0 < runner.stats.max_tick_gap < 0.5
    assert sum(runner.stats.worst_gap) <= runner.stats.max_tick_gap + 1e-3


def test_runner_that_cannot_keep_up_gives_up_real_time_priority_waiting_does_not_count():
    # Waiting (here: sleeping 80 ms a tick, as for the GIL or a CPU) falls far behind real
    # time but uses no CPU: the loop keeps its priority.
    waiting = RealtimeRunner(StandInWorld(step_s=0.08), 250.0, priority=5, cpu_window=0.2)
    waiting.start()
    try:
        if not waiting.scheduling.startswith('SCHED_FIFO'):
            pytest.skip(f'real-time priority not granted here: {waiting.scheduling}')
        time.sleep(0.6)
    finally:
        waiting.stop()
    assert waiting.scheduling == 'SCHED_FIFO priority 5' and waiting.stats.overruns >= 3
    # Computing 6 ms per 4 ms tick: it would take a whole CPU, so it drops to normal.
    busy = RealtimeRunner(StandInWorld(step_s=0.006, busy=True), 250.0, priority=5, cpu_window=0.2)
    busy.start()
    try:
        end = time.monotonic() + 5.0
        while 'dropped' not in busy.scheduling and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        busy.stop()
    assert busy.scheduling.startswith('normal (dropped SCHED_FIFO 5'), busy.scheduling


def test_priority_is_checked_and_zero_asks_for_nothing():
    with pytest.raises(ValueError, match='0..99'):
        RealtimeRunner(StandInWorld(), 250.0, priority=100)
    assert request_realtime(0) == 'normal'


def test_periodic_calls_keep_their_rates_and_survive_errors():
    fast, slow, errors = [], [], []

    def failing() -> None:
        slow.append(1)
        raise RuntimeError('boom')

    calls = PeriodicCalls([(100.0, lambda: fast.append(1)), (10.0, failing)], errors.append)
    calls.start()
    time.sleep(0.55)
    calls.stop()
    assert 25 <= len(fast) <= 60 and 3 <= len(slow) <= 7
    assert len(errors) == len(slow) and isinstance(errors[0], RuntimeError)
    assert not any(t.name == 'periodic_calls' for t in threading.enumerate())
    with pytest.raises(ValueError):
        PeriodicCalls([(0.0, lambda: None)])


def test_niceness_is_set_for_the_thread_and_what_it_starts():
    code = (
        'import os, threading\n'
        'from robotracer_sim.g1.runner import request_nice\n'
        'print(request_nice(3))\n'
        'seen = []\n'
        't = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))\n'
        't.start(); t.join()\n'
        'print(seen[0])\n'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ['nice', '3', '3'], out.stdout + out.stderr
