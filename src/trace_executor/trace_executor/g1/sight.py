"""What one look at the scene says: is the object in view, and its destination?

Read from a failed ``GetTrace`` response's typed fields (``error_code``, ``bad_point``) or from
where a usable trace ends in the image; the object's phrase is taken from the instruction to
ask for it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import enum
import re
from typing import Any

from robotracer_msgs.srv import GetTrace
from trace_executor.execution import TraceInput
from trace_executor.g1.camera import at_image_border

_RESPONSE = GetTrace.Response


class Sight(enum.Enum):
    """What one look at the scene gave."""

    BOTH = 'the object and its destination are in view'
    OBJECT_ONLY = 'the object is in view, its destination is not'
    NOTHING = 'the object is not in view'


def failure_sight(response: Any) -> Sight | None:
    """What a failed trace request says about visibility (None: it says nothing about it).

    The perception node reports an answer saying the object cannot be seen as
    ``ERROR_NOT_VISIBLE``, and a trace point the model put behind the camera as
    ``ERROR_BAD_ANSWER`` with that point in ``bad_point`` and its depth (<= 0) in
    ``bad_point_depth_m``.

    Args:
        response: a ``GetTrace`` response (``error_code``, ``bad_point``,
            ``bad_point_depth_m``).

    Returns:
        :attr:`Sight.NOTHING` for ``ERROR_NOT_VISIBLE`` (or the first point, the object,
        behind the camera); :attr:`Sight.OBJECT_ONLY` when a later point (the destination) is
        behind the camera — the model saw the object, the trace leaves the view; None for every
        other failure (model down, malformed answer, ...), which looking around would not fix.
    """
    code = int(response.error_code)
    if code == _RESPONSE.ERROR_NOT_VISIBLE:
        return Sight.NOTHING
    if code != _RESPONSE.ERROR_BAD_ANSWER or int(response.bad_point) < 1:
        return None
    if not float(response.bad_point_depth_m) <= 0.0:  # (NaN: not a depth problem)
        return None
    return Sight.NOTHING if int(response.bad_point) <= 1 else Sight.OBJECT_ONLY


def trace_sight(
    pixel_u: Sequence[float], pixel_v: Sequence[float], width: int, height: int
) -> Sight:
    """What a usable trace says about visibility: is its end (the destination) in the image?

    A model clips what it cannot see to the image border; a trace that ends there has its
    destination out of view (its 3D end is not where the destination is).

    Args:
        pixel_u: per-point image column (pixels).
        pixel_v: per-point image row.
        width: image width (0: unknown).
        height: image height.

    Returns:
        :attr:`Sight.OBJECT_ONLY` when the last point lies on the border, else
        :attr:`Sight.BOTH` (also when the pixels are unknown).
    """
    n = len(pixel_u)
    if n == 0 or len(pixel_v) != n or width <= 0 or height <= 0:
        return Sight.BOTH
    if at_image_border(pixel_u[-1], pixel_v[-1], width, height):
        return Sight.OBJECT_ONLY
    return Sight.BOTH


_CARRY_VERB = (
    r'(?:put|place|move|set|drop|stack|bring|carry|transfer|take|give|hand|push|slide|nudge'
    r'|shift|drag|pick\s+up|grab|lift)'
)
_RELATION = (
    r'(?:on\s+top\s+of|onto|on|into|inside(?:\s+of)?|in|next\s+to|beside|near|close\s+to|by'
    r'|to\s+the\s+(?:left|right)\s+(?:side\s+)?of|(?:left|right)\s+of|in\s+front\s+of|behind'
    r'|to|toward|towards|at|over|under|from|and)'
)
_DIRECTION = r'(?:left|right|forwards?|backwards?|up|down|away|closer|back)'
_OBJECT = re.compile(
    rf'^(?:please\s+)?{_CARRY_VERB}\s+(?P<x>.+?)'
    rf'(?:\s+(?:{_RELATION}\b|{_DIRECTION}\b|\d).*)?[.!]?$',
    re.IGNORECASE,
)


def object_phrase(instruction: str) -> str | None:
    """The phrase naming the object an instruction moves, e.g. ``the red cup``.

    Best effort for the usual "verb object relation destination" sentences; used to say what
    the robot looks for and to ask the model about the object alone.

    Args:
        instruction: e.g. ``put the red cup on the plate``.

    Returns:
        ``the red cup``; None when the sentence does not have that shape.
    """
    text = ' '.join((instruction or '').split())
    m = _OBJECT.match(text)
    if m is None:
        return None
    x = m.group('x').strip(' ,.')
    if not x or len(x) > 60:
        return None
    words = x.split()
    if words[0].lower() not in ('the', 'a', 'an', 'this', 'that', 'my', 'your'):
        x = 'the ' + x
    return x


@dataclass
class Seen:
    """One look: what the model gave for the instruction from where the robot is now.

    Attributes:
        sight: what is in view.
        trace: the trace (when the model gave a usable one), in any frame with its transform
            to odom (:class:`~trace_executor.execution.TraceInput`).
        note: what the perception node said (for messages), e.g. its failure.
    """

    sight: Sight
    trace: TraceInput | None = None
    note: str = ''


__all__ = ['Seen', 'Sight', 'failure_sight', 'object_phrase', 'trace_sight']
