"""Workspace-wide pytest setup: DDS isolation and child-process hygiene for every package's tests.

- Each pytest run gets its own ROS_DOMAIN_ID (derived from its PID unless already set by the
  caller) and discovery limited to localhost, so parallel runs and other ROS processes on the
  machine cannot cross-talk. Child processes inherit the environment.
- The ``spawn`` fixture starts child processes and always kills them at teardown.
- Tests marked ``ros_install``/``gpu``/``hardware`` are skipped here with the reason printed.
"""

from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import os
import signal
import subprocess
import sys

import pytest

if 'ROBOTRACER_TEST_DOMAIN_FIXED' not in os.environ:
    os.environ['ROS_DOMAIN_ID'] = str(1 + os.getpid() % 100)
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _gpu() -> bool:
    if not _has('torch'):
        return False
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose requirements are absent, with a reason that says what is missing."""
    missing_ros = [m for m in ('launch', 'launch_ros', 'launch_testing') if not _has(m)]
    gpu = None
    for item in items:
        if 'ros_install' in item.keywords and missing_ros:
            item.add_marker(
                pytest.mark.skip(
                    reason=f'needs a full ROS 2 install: {", ".join(missing_ros)} not importable '
                    '(not on PyPI; run in the docker image)'
                )
            )
        if 'gpu' in item.keywords:
            gpu = _gpu() if gpu is None else gpu
            if not gpu:
                item.add_marker(pytest.mark.skip(reason='needs a CUDA GPU (none visible)'))
        if 'hardware' in item.keywords and os.environ.get('ROBOTRACER_HARDWARE') != '1':
            item.add_marker(
                pytest.mark.skip(
                    reason='needs a real robot or URSim: set ROBOTRACER_HARDWARE=1 and robot_ip'
                )
            )


class Spawner:
    """Start child processes that are always terminated at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def __call__(self, args: list[str], **kwargs) -> subprocess.Popen:
        """Start ``args`` (``python`` means this interpreter) in its own process group."""
        if args and args[0] == 'python':
            args = [sys.executable, *args[1:]]
        kwargs.setdefault('stdout', subprocess.PIPE)
        kwargs.setdefault('stderr', subprocess.STDOUT)
        kwargs.setdefault('text', True)
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """SIGINT, then SIGKILL whatever is still alive after 5 s."""
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    """Fixture: ``spawn(['python', 'script.py'])`` -> Popen, killed at teardown."""
    s = Spawner()
    try:
        yield s
    finally:
        s.close()
