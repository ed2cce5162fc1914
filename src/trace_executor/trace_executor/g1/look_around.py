"""The look-around policy of the G1: which views to try, in what order, within what budget.

The waist turns first (cheap, the feet stay), then the body turns in place; the policy only
says where to look next and how to describe it. The motions are the runner's
(:mod:`trace_executor.g1.search`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
import time

from trace_executor.g1.sight import Sight
from trace_executor.g1.stance import wrap_angle


@dataclass(frozen=True)
class View:
    """Where the head camera looks, relative to where the search started.

    Attributes:
        waist_yaw_rad: waist yaw offset from the waist at the start (+ left).
        base_yaw_rad: base heading offset from the start heading (+ left).
    """

    waist_yaw_rad: float = 0.0
    base_yaw_rad: float = 0.0

    def describe(self) -> str:
        """E.g. ``the waist turned left 60°``, ``the body turned left 120°``, ``the start``."""
        parts = []
        if abs(self.base_yaw_rad) > 1e-6:
            parts.append(f'the body turned {_turn_words(self.base_yaw_rad)}')
        if abs(self.waist_yaw_rad) > 1e-6:
            parts.append(f'the waist turned {_turn_words(self.waist_yaw_rad)}')
        return ' and '.join(parts) or 'the start'


def _turn_words(rad: float) -> str:
    deg = math.degrees(rad)
    return f'{"left" if deg > 0 else "right"} {abs(deg):.0f}°'


@dataclass(frozen=True)
class SearchConfig:
    """The scan.

    Attributes:
        waist_yaws_deg: waist yaws to look with first, from the start heading (+ left).
        base_yaws_deg: then base headings to turn to (from the start, + left, turning the same
            way: each step under 180°), waist straight.
        time_budget_s: the search gives up after this long (then turns back).
        speed_scale: speed of the waist turns (fraction of the joint limits).
        settle_s: after a waist turn, wait at most this long for the waist to get there.
        settle_tolerance_rad: ... within this angle.
    """

    waist_yaws_deg: tuple[float, ...] = (60.0, -60.0)
    base_yaws_deg: tuple[float, ...] = (120.0, 180.0, 240.0)
    time_budget_s: float = 120.0
    speed_scale: float = 0.6
    settle_s: float = 1.5
    settle_tolerance_rad: float = 0.05

    def __post_init__(self) -> None:
        """Reject a scan that cannot be run.

        Raises:
            ValueError: naming the field.
        """
        for w in self.waist_yaws_deg:
            if not (math.isfinite(w) and 0.0 < abs(w) <= 150.0):
                raise ValueError(f'waist_yaws_deg must be in [-150, 150] and not 0, got {w}')
        prev = 0.0
        for b in self.base_yaws_deg:
            if not (math.isfinite(b) and 0.0 < abs(b - prev) < 180.0 and abs(b) < 360.0):
                raise ValueError(
                    f'base_yaws_deg must step by less than 180° (not 0) within ±360°, got '
                    f'{list(self.base_yaws_deg)}'
                )
            prev = b
        if prev and not abs(abs(prev) - 360.0) < 180.0:
            raise ValueError(
                f'base_yaws_deg must end within 180° of a full turn, got {prev}° (the return '
                'to the start heading continues the turn)'
            )
        if not (math.isfinite(self.time_budget_s) and self.time_budget_s > 0):
            raise ValueError(f'time_budget_s must be > 0, got {self.time_budget_s}')
        if not 0.0 < self.speed_scale <= 1.0:
            raise ValueError(f'speed_scale must be in (0, 1], got {self.speed_scale}')


class LookAround:
    """The scan: the views to try in order, what each move is, when to give up.

    Usage: ``view = policy.next_view()`` until it returns None (everything tried or the time
    budget spent), moving the robot to each view and asking the model there; then move to
    :attr:`home` (the start view) and fail with :meth:`summary`.

    Args:
        config: the views and the time budget.
        clock: monotonic seconds (injected for tests).
    """

    home = View()

    def __init__(
        self, config: SearchConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SearchConfig()
        self._clock = clock
        self._t0 = clock()
        cfg = self.config
        self.views: list[View] = [View(waist_yaw_rad=math.radians(w)) for w in cfg.waist_yaws_deg]
        self.views += [View(base_yaw_rad=math.radians(b)) for b in cfg.base_yaws_deg]
        self.tried: list[tuple[View, Sight]] = []
        self.current = View()
        self._next = 0
        self.out_of_time = False

    @property
    def elapsed_s(self) -> float:
        """Seconds since the search started."""
        return self._clock() - self._t0

    @property
    def progress(self) -> float:
        """Fraction of the views tried (0..1)."""
        return len(self.tried) / max(1, len(self.views))

    def next_view(self) -> View | None:
        """The next view to try, or None: give up (all tried, or out of time)."""
        if self._next >= len(self.views):
            return None
        if self.elapsed_s > self.config.time_budget_s:
            self.out_of_time = True
            return None
        view = self.views[self._next]
        self._next += 1
        return view

    def record(self, view: View, sight: Sight) -> None:
        """What the model said at ``view`` (the robot is there now)."""
        self.tried.append((view, sight))
        self.current = view

    def moved_to(self, view: View) -> None:
        """The robot is at ``view`` now (without a look: e.g. back home)."""
        self.current = view

    def move_words(self, view: View) -> str:
        """What moving from the current view to ``view`` does, e.g. ``turning left 60°``."""
        if view == self.home and self.current != self.home:
            return 'turning back to where it started'
        d_base = wrap_angle(view.base_yaw_rad - self.current.base_yaw_rad)
        if abs(d_base) > 1e-6:
            return f'turning the body {_turn_words(d_base)}'
        d_waist = view.waist_yaw_rad - self.current.waist_yaw_rad
        if abs(d_waist) > 1e-6:
            return f'turning the waist {_turn_words(d_waist)}'
        return 'looking again'

    def summary(self) -> str:
        """What was tried, for the failure message."""
        waist = [v for v, _ in self.tried if v.waist_yaw_rad and not v.base_yaw_rad]
        base = [v for v, _ in self.tried if v.base_yaw_rad]
        parts = ['asked the model from where it stood']
        if waist:
            parts.append(
                'with the waist turned ' + _join([_turn_words(v.waist_yaw_rad) for v in waist])
            )
        if base:
            parts.append(
                'with the body turned left to '
                + _join([f'{math.degrees(v.base_yaw_rad):.0f}°' for v in base])
            )
        text = f'{len(self.tried) + 1} views ({", ".join(parts)})'
        text += f' in {self.elapsed_s:.0f} s'
        if self.out_of_time:
            text += f' (time budget {self.config.time_budget_s:.0f} s spent)'
        return text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ', '.join(items[:-1]) + ' and ' + items[-1]


__all__ = ['LookAround', 'SearchConfig', 'View']
