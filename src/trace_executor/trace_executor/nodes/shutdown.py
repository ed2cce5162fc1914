"""Run an executor node until SIGINT/SIGTERM and stop the robot before anything is destroyed.

Design notes: docs/design-notes.md (trace_executor.nodes.shutdown).
"""

from __future__ import annotations

from collections.abc import Callable
import signal
import threading
import time
from types import FrameType

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

__all__ = ['ShutdownRequest', 'spin_until_shutdown']


class ShutdownRequest:
    """SIGINT/SIGTERM handlers that record the request (install from the main thread).

    A second signal while shutting down is ignored: the shutdown is bounded and stops the
    robot first; SIGKILL remains for a process that must die at once.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ''

    @classmethod
    def install(cls) -> ShutdownRequest:
        """Install the handlers for SIGINT and SIGTERM and return the request."""
        req = cls()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, req._on_signal)
        return req

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.event.is_set():
            self.request(signal.Signals(signum).name)

    def request(self, reason: str) -> None:
        """Ask for shutdown (from a handler, a thread or a test)."""
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


def spin_until_shutdown(
    node: Node,
    request: ShutdownRequest,
    halt: Callable[[str], None],
    goal_running: Callable[[], bool],
    *,
    num_threads: int = 4,
    goal_wait_s: float = 5.0,
    executor_wait_s: float = 2.0,
) -> str:
    """Spin ``node`` until shutdown is requested, then stop the robot and the executor.

    Args:
        node: the executor node.
        request: the installed :class:`ShutdownRequest`.
        halt: ``halt(reason)`` stops the robot and makes every motion end (the node's).
        goal_running: True while a goal is being executed.
        num_threads: threads of the MultiThreadedExecutor.
        goal_wait_s: longest wait for the running goal to end after the halt, s.
        executor_wait_s: longest wait for the executor's callbacks to return, s.

    Returns:
        Why it shut down (``'SIGTERM'``, ``'SIGINT'``, or the context being shut down).
    """
    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    spinning = threading.Event()
    spinning.set()

    def spin() -> None:
        # spin_once in a loop rather than spin(): the loop can be left without shutting the
        # executor down, so the callbacks already handed to its threads can finish first
        try:
            while spinning.is_set() and rclpy.ok(context=node.context):
                executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            pass
        finally:
            request.request('the ROS context was shut down')

    thread = threading.Thread(target=spin, name='executor_spin', daemon=True)
    thread.start()
    while not request.event.wait(0.2):
        if not rclpy.ok(context=node.context):
            request.request('the ROS context was shut down')
    reason = request.reason
    log = node.get_logger()
    if rclpy.ok(context=node.context):
        log.info(f'{reason}: stopping the robot before shutting down')
    t0 = time.monotonic()
    try:
        halt(f'executor shutting down ({reason})')
    except Exception as exc:  # noqa: BLE001 - report and go on shutting down
        log.error(f'stopping the robot failed: {type(exc).__name__}: {exc}')
    deadline = time.monotonic() + goal_wait_s
    while goal_running() and time.monotonic() < deadline:
        time.sleep(0.02)
    if goal_running():
        log.warning(f'the running goal did not end within {goal_wait_s:g} s of the stop')
    elif rclpy.ok(context=node.context):
        log.info(f'robot stopped, goals ended in {time.monotonic() - t0:.2f} s; shutting down')
    time.sleep(0.2)  # let the executor send the goal's result
    spinning.clear()
    thread.join(timeout=executor_wait_s)
    if not _drain(executor, executor_wait_s):
        log.warning(f'callbacks still running {executor_wait_s:g} s after the executor stopped')
    executor.shutdown(timeout_sec=0.0)
    return reason


def _drain(executor: MultiThreadedExecutor, timeout_s: float) -> bool:
    """Wait (bounded) for the callbacks already handed to the executor's worker threads.

    rclpy 7.1's ``MultiThreadedExecutor.shutdown`` neither waits for them nor stops its thread
    pool, and it destroys the guard condition those queued handlers trigger: a handler that
    runs after it (or a callback still running when the node is destroyed) raises "cannot use
    Destroyable because destruction was requested". So: stop spinning, drain, then shut down.

    Returns:
        True when every worker finished within ``timeout_s``.
    """
    pool = getattr(executor, '_executor', None)  # its concurrent.futures.ThreadPoolExecutor
    if pool is None:
        return True
    waiter = threading.Thread(
        target=pool.shutdown, kwargs={'wait': True, 'cancel_futures': True}, daemon=True
    )
    waiter.start()
    waiter.join(timeout_s)
    return not waiter.is_alive()
