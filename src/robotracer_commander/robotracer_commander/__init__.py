"""The one client of the RoboTracer actions and services: :class:`Commander`."""

from robotracer_commander.commander import (
    ERROR_NAMES,
    PHASE_NAMES,
    Commander,
    Feedback,
    GoalOutcome,
    RunningGoal,
    Status,
    TraceReply,
    wait_future,
)

__all__ = [
    'Commander',
    'Feedback',
    'GoalOutcome',
    'RunningGoal',
    'Status',
    'TraceReply',
    'ERROR_NAMES',
    'PHASE_NAMES',
    'wait_future',
]
