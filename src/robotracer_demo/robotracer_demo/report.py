"""The demo's results: one record per instruction, ``summary.json`` and the printed table.

ROS-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
import json
from typing import Any


@dataclass
class InstructionOutcome:
    """How one instruction went.

    Attributes:
        text: the instruction.
        object: the object it moves; destination: where it should end.
        success: the executor's verdict (``ExecuteInstruction`` result).
        error_code: the result's ``error_code`` (0 on success).
        error: why it failed (the result's ``error_msg``, or a client-side reason); empty on
            success.
        message: the result's ``error_msg`` as sent (on success it says what was done).
        replans: replans the executor performed.
        model_s / planning_s / motion_s: time in each phase, from feedback (client side), s.
        total_s: goal sent -> result received, s.
        final_position: the object's ground-truth centre after the goal, world frame, m.
        destination_position: the destination's centre, world frame, m.
        final_error_m: horizontal distance between the two, m (None if unknown).
        tolerance_m: largest final error that counts as done, m.
        moved: the mid-execution perturbation (``at_s``, ``from``, ``to``, ``message``) or None.
        timeline: (seconds since the goal was sent, event) for each phase change and the move.
        traces: number of distinct traces the executor worked with (1 + replans normally).
        files: picture files written for this instruction (relative to the output folder).
    """

    text: str
    object: str
    destination: str
    success: bool = False
    error_code: int = 0
    error: str = ''
    message: str = ''
    replans: int = 0
    model_s: float = 0.0
    planning_s: float = 0.0
    motion_s: float = 0.0
    total_s: float = 0.0
    final_position: list[float] | None = None
    destination_position: list[float] | None = None
    final_error_m: float | None = None
    tolerance_m: float = 0.03
    moved: dict[str, Any] | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)
    traces: int = 0
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The executor succeeded and the object ended within tolerance of the destination."""
        return (
            self.success
            and self.final_error_m is not None
            and self.final_error_m <= self.tolerance_m
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``ok`` included)."""
        d = asdict(self)
        d['ok'] = self.ok
        return d


def format_table(outcomes: Sequence[InstructionOutcome]) -> str:
    """The table the demo prints.

    Args:
        outcomes: one per instruction, in order.

    Returns:
        A plain-text table (no trailing newline).
    """
    head = (
        '#',
        'instruction',
        'success',
        'replans',
        'model s',
        'planning s',
        'motion s',
        'final error cm',
    )
    rows = []
    for i, o in enumerate(outcomes, 1):
        err = '-' if o.final_error_m is None else f'{o.final_error_m * 100:.1f}'
        if o.final_error_m is not None and o.final_error_m > o.tolerance_m:
            err += ' (too far)'
        rows.append(
            (
                str(i),
                o.text,
                'yes' if o.success else 'NO',
                str(o.replans) + (' (moved)' if o.moved and o.moved.get('done') else ''),
                f'{o.model_s:.2f}',
                f'{o.planning_s:.2f}',
                f'{o.motion_s:.2f}',
                err,
            )
        )
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    right = {0, 4, 5, 6, 7}

    def line(r: Sequence[str]) -> str:
        return '  '.join(
            (v.rjust(w) if c in right else v.ljust(w))
            for c, (v, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    rule = '  '.join('-' * w for w in widths)
    return '\n'.join([line(head), rule, *(line(r) for r in rows)])


def write_summary(
    path: str, robot: str, outcomes: Sequence[InstructionOutcome], extra: dict[str, Any]
) -> dict[str, Any]:
    """Write ``summary.json``.

    Args:
        path: output file.
        robot: which demo.
        outcomes: one per instruction.
        extra: more top-level fields (duration, recording, ...).

    Returns:
        The written dict.
    """
    data = {
        'robot': robot,
        'ok': bool(outcomes) and all(o.ok for o in outcomes),
        'instructions': [o.to_dict() for o in outcomes],
        **extra,
    }
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
    return data
