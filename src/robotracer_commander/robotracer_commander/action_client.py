"""An rclpy ActionClient without the response race of rclpy 7.1.x (ros2/rclpy issue 1123).

``ActionClient.send_goal_async`` sends the request and only then registers its sequence number;
an executor thread that takes the response in between drops it ("Ignoring unexpected goal
response"), and the caller waits forever or sees a rejection. Cancel and get-result requests
have the same gap. Upstream fixed it with a lock (ros2/rclpy PR 1308); the Jazzy wheels
(rclpy 7.1.6) predate that. :class:`RaceFreeActionClient` adds the same lock: sending and
registering happen under it, and the executor looks a response up under it.
"""

from __future__ import annotations

import threading
from typing import Any

from rclpy.action import ActionClient
from rclpy.task import Future

_RESPONSES = ('goal', 'cancel', 'result')


class RaceFreeActionClient(ActionClient):
    """``rclpy.action.ActionClient`` whose responses can never arrive "too early"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._registration_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def send_goal_async(self, goal: Any, feedback_callback: Any = None, goal_uuid: Any = None):
        """Send a goal; the returned future resolves to a ClientGoalHandle (see rclpy)."""
        with self._registration_lock:
            return super().send_goal_async(goal, feedback_callback, goal_uuid)

    def _cancel_goal_async(self, goal_handle: Any) -> Future:
        with self._registration_lock:
            return super()._cancel_goal_async(goal_handle)

    def _get_result_async(self, goal_handle: Any) -> Future:
        with self._registration_lock:
            return super()._get_result_async(goal_handle)

    async def execute(self, taken_data: dict) -> None:
        """Dispatch taken responses under the lock; feedback and status as rclpy does."""
        responses = {k: v for k, v in taken_data.items() if k in _RESPONSES}
        rest = {k: v for k, v in taken_data.items() if k not in _RESPONSES}
        if responses:
            with self._registration_lock:
                # rclpy's handling of these three never suspends: this await runs to the end
                # while the lock is held.
                await super().execute(responses)
        if 'feedback' in rest:
            # the goal's feedback callback is registered by send_goal_async under the lock
            with self._registration_lock:
                pass
        if rest:
            await super().execute(rest)
