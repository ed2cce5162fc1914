"""Gaps between ``rt/lowstate`` samples: ``python -m robotracer_sim.g1.lowstate_probe``.

Design notes: docs/design-notes.md (robotracer_sim.g1.lowstate_probe).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import os
import signal
import sys
import threading
import time

import numpy as np


def gap_summary(stamps_s: Sequence[float]) -> dict[str, float | int]:
    """Gap statistics of a series of arrival (or source) times.

    Args:
        stamps_s: sample times in seconds, in arrival order.

    Returns:
        ``{'samples', 'rate_hz', 'p50_ms', 'p95_ms', 'p99_ms', 'max_ms', 'over_20ms',
        'over_100ms'}``; the percentiles are 0 with fewer than two samples.

    """
    t = np.asarray(stamps_s, dtype=float)
    out: dict[str, float | int] = {'samples': int(t.size)}
    if t.size < 2:
        return {
            **out,
            'rate_hz': 0.0,
            'p50_ms': 0.0,
            'p95_ms': 0.0,
            'p99_ms': 0.0,
            'max_ms': 0.0,
            'over_20ms': 0,
            'over_100ms': 0,
        }
    gaps = np.diff(t) * 1000.0
    span = float(t[-1] - t[0])
    return {
        **out,
        'rate_hz': round((t.size - 1) / span, 1) if span > 0 else 0.0,
        'p50_ms': round(float(np.percentile(gaps, 50)), 2),
        'p95_ms': round(float(np.percentile(gaps, 95)), 2),
        'p99_ms': round(float(np.percentile(gaps, 99)), 2),
        'max_ms': round(float(gaps.max()), 2),
        'over_20ms': int(np.count_nonzero(gaps > 20.0)),
        'over_100ms': int(np.count_nonzero(gaps > 100.0)),
    }


class LowStateProbe:
    """Record ``rt/lowstate`` source and receive times on a DDS domain (call in its own process).

    Args:
        domain: DDS domain id.
        interface: network interface (``lo`` for the simulator).

    """

    def __init__(self, domain: int, interface: str = 'lo') -> None:
        from cyclonedds.core import (
            InstanceState,
            Policy,
            Qos,
            ReadCondition,
            SampleState,
            ViewState,
            WaitSet,
        )
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic
        from unitree_sdk2py.core.channel import ChannelFactoryInitialize
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowState_

        ChannelFactoryInitialize(domain, interface or None)
        self._dp = DomainParticipant(domain)
        qos = Qos(Policy.History.KeepLast(1000))
        self._reader = DataReader(self._dp, Topic(self._dp, 'rt/lowstate', LowState_), qos)
        self._cond = ReadCondition(
            self._reader, SampleState.Any | ViewState.Any | InstanceState.Any
        )
        self._waitset = WaitSet(self._dp)
        self._waitset.attach(self._cond)
        self.source: list[float] = []
        self.receive: list[float] = []
        self._recording = False

    def run(self, stop: threading.Event, warmup: float = 0.0) -> None:
        """Take samples until ``stop`` is set; samples in the first ``warmup`` s are ignored."""
        from cyclonedds._clayer import ddspy_take
        from cyclonedds.util import duration

        t_start = time.monotonic()
        while not stop.is_set():
            self._waitset.wait(duration(milliseconds=200))
            got = ddspy_take(self._reader._ref, 1000)
            now = time.monotonic()
            if isinstance(got, int) or not got:
                continue
            if now - t_start < warmup:
                continue
            self.receive.append(now)
            self.source.extend(info.source_timestamp * 1e-9 for _, info in got if info.valid_data)

    def summary(self) -> dict:
        """``{'source': gap_summary, 'receive': gap_summary}`` of what was recorded."""
        return {'source': gap_summary(self.source), 'receive': gap_summary(self.receive)}


def main(argv: list[str] | None = None) -> int:
    """Probe until ``--duration`` (or a signal) and print the JSON line."""
    p = argparse.ArgumentParser(prog='python -m robotracer_sim.g1.lowstate_probe')
    p.add_argument(
        '--domain',
        type=int,
        default=int(os.environ.get('ROS_DOMAIN_ID', '0') or 0),
        help='DDS domain id (default: $ROS_DOMAIN_ID or 0)',
    )
    p.add_argument('--interface', default='lo', help="network interface ('' = auto)")
    p.add_argument(
        '--duration', type=float, default=10.0, help='seconds to record (0: until a signal)'
    )
    p.add_argument('--warmup', type=float, default=0.0, help='seconds to ignore at the start')
    args = p.parse_args(argv)
    probe = LowStateProbe(args.domain, args.interface)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.duration > 0:
        timer = threading.Timer(args.warmup + args.duration, stop.set)
        timer.daemon = True
        timer.start()
    print('LOWSTATE_PROBE_READY', flush=True)
    probe.run(stop, args.warmup)
    print('LOWSTATE_GAPS ' + json.dumps(probe.summary()), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
