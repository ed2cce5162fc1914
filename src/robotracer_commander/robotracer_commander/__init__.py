"""The one client of the RoboTracer actions and services: :class:`Commander`."""

from robotracer_commander.commander import (
    Commander,
    Feedback,
    GoalOutcome,
    RunningGoal,
    Status,
    TraceReply,
    error_names,
    phase_names,
    wait_future,
)

__all__ = [
    'Commander',
    'Feedback',
    'GoalOutcome',
    'RunningGoal',
    'Status',
    'TraceReply',
    'error_names',
    'phase_names',
    'wait_future',
]
