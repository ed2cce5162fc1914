"""Where a goal's time went, measured on the client from ExecuteInstruction feedback.

The executor reports its phase in every feedback message; the time between phase changes is
attributed to

- ``model_s``: PERCEIVING (the first query and every re-query of a replan),
- ``planning_s``: PLANNING and REPLANNING,
- ``motion_s``: EXECUTING and WALKING (gripper actions included),

from the first feedback to the result. Feedback travels over DDS, so each figure is accurate to
a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robotracer_msgs.action import ExecuteInstruction

_FB = ExecuteInstruction.Feedback
PERCEIVING, PLANNING, EXECUTING = _FB.PHASE_PERCEIVING, _FB.PHASE_PLANNING, _FB.PHASE_EXECUTING
REPLANNING, WALKING = _FB.PHASE_REPLANNING, _FB.PHASE_WALKING


def bucket(phase: int) -> str:
    """Which figure a feedback message's phase counts towards (the phase alone decides).

    Args:
        phase: ``ExecuteInstruction.Feedback.PHASE_*``.

    Returns:
        ``'model_s'``, ``'planning_s'`` or ``'motion_s'``.

    Raises:
        ValueError: an unknown phase.
    """
    if phase == PERCEIVING:
        return 'model_s'
    if phase in (PLANNING, REPLANNING):
        return 'planning_s'
    if phase in (EXECUTING, WALKING):
        return 'motion_s'
    raise ValueError(f'unknown feedback phase {phase}')


@dataclass
class PhaseClock:
    """Accumulates time per bucket from timestamped feedback.

    Feed it every feedback (:meth:`feedback`), then :meth:`finish` with the result's time.
    """

    totals: dict[str, float] = field(
        default_factory=lambda: {'model_s': 0.0, 'planning_s': 0.0, 'motion_s': 0.0}
    )
    current: str | None = None
    since: float = 0.0
    #: (time, phase) of each phase change, for the record.
    changes: list[tuple[float, int]] = field(default_factory=list)
    _phase: int | None = None
    #: time of the first EXECUTING feedback (None until then).
    executing_since: float | None = None

    def feedback(self, t: float, phase: int, message: str) -> None:
        """Account for one feedback message received at monotonic time ``t``.

        Raises:
            ValueError: an unknown phase.
        """
        which = bucket(phase)
        if phase != self._phase:
            self.changes.append((t, phase))
            self._phase = phase
        if phase == EXECUTING and self.executing_since is None:
            self.executing_since = t
        if which == self.current:
            return
        if self.current is not None:
            self.totals[self.current] += max(0.0, t - self.since)
        self.current, self.since = which, t

    def finish(self, t: float) -> dict[str, float]:
        """Close the running bucket at time ``t`` and return the totals (seconds)."""
        if self.current is not None:
            self.totals[self.current] += max(0.0, t - self.since)
            self.current = None
        return dict(self.totals)
