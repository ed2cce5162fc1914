"""Error codes and the planning exception of the execution side (ROS-free).

The numbers are those of the ``uint16 ERROR_*`` constants of
``robotracer_msgs/action/ExecuteInstruction`` so a node can copy ``int(code)`` straight into
``result.error_code``; ``test_error_codes.py`` checks that they stay in step with the action file.
"""

from __future__ import annotations

import enum
from typing import Optional


class ErrorCode(enum.IntEnum):
    """Why a goal failed; same numbers as ``ExecuteInstruction.Result.ERROR_*``."""

    NONE = 0
    BUSY = 1
    BAD_GOAL = 2
    PERCEPTION = 3
    INVALID_TRACE = 4
    UNREACHABLE = 5
    WORKSPACE = 6
    COLLISION = 7
    JOINT_LIMIT = 8
    EXECUTION = 9
    CANCELED = 10
    REPLAN_LIMIT = 11
    BACKEND_UNAVAILABLE = 12
    PREEMPTED = 13
    SHUTDOWN = 14


class PlanningError(Exception):
    """A trace or goal was rejected before any motion.

    Attributes:
        code: why (an :class:`ErrorCode`).
        waypoint_index: index of the offending point of the *input trace* (0-based), or
            ``None`` when the problem is not tied to one point (empty trace, wrong frame,
            bad start configuration).
        message: human-readable reason; names the waypoint and what was wrong with it.
    """

    def __init__(self, code: ErrorCode, waypoint_index: Optional[int], message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.waypoint_index = waypoint_index
        self.message = message

    def __str__(self) -> str:
        return f'{self.code.name}: {self.message}'

    def __repr__(self) -> str:
        return (
            f'PlanningError(code={self.code.name}, waypoint_index={self.waypoint_index}, '
            f'message={self.message!r})'
        )
