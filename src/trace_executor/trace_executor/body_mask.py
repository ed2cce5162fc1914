"""The robot's body as spheres, for masking it (and what it holds) out of the depth it sees.

:class:`RobotMask` is a robot's mask at one instant; :class:`BodyMaskHistory` keeps the masks
of the last moments, because a depth frame reaches the watcher some time after it was taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time
from typing import Union

import numpy as np


@dataclass
class RobotMask:
    """The robot's body now, as spheres to mask, in the monitor's base frame.

    Attributes:
        spheres: (M, 4) rows ``x, y, z, radius`` (metres): links, gripper or hands.
        hand: (4, 4) pose of the hand that grasps (the UR5's TCP, the G1's grasp frame of the
            closed hand), or None: what the robot holds is carried with this pose.
    """

    spheres: np.ndarray
    hand: np.ndarray | None = None


#: What a robot-mask source may return: a :class:`RobotMask`, (M, 3) points (masked with
#: :attr:`MonitorConfig.robot_mask_radius_m`), (M, 4) spheres, or None (nothing known).
MaskInput = Union[RobotMask, np.ndarray, None]


def mask_spheres(mask: MaskInput, default_radius_m: float) -> np.ndarray:
    """(M, 4) ``x, y, z, radius`` rows of a mask given in any :data:`MaskInput` form."""
    if mask is None:
        return np.zeros((0, 4))
    if isinstance(mask, RobotMask):
        mask = mask.spheres
    a = np.asarray(mask, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim != 2 or a.shape[1] not in (3, 4):
        raise ValueError(f'robot mask must be (M, 3) points or (M, 4) spheres, got {a.shape}')
    if a.shape[1] == 3:
        a = np.column_stack([a, np.full(len(a), default_radius_m)])
    return a


def chain_spheres(chain: np.ndarray, radius_m: float, step_m: float = 0.05) -> np.ndarray:
    """(M, 4) spheres of ``radius_m`` every ``step_m`` along a polyline ``chain`` (N, 3)."""
    chain = np.asarray(chain, dtype=np.float64).reshape(-1, 3)
    pts = [chain[0]]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_m)))
        pts += [a + (b - a) * (i / n) for i in range(1, n + 1)]
    p = np.array(pts)
    return np.column_stack([p, np.full(len(p), radius_m)])


def pose_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation angle (rad) between two 4×4 poses."""
    dt = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    c = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1.0) / 2.0
    return dt, float(np.arccos(np.clip(c, -1.0, 1.0)))


def _swept(a: np.ndarray, b: np.ndarray, max_steps: int = 16) -> list[np.ndarray]:
    """Spheres between two samples of the same mask (none when they do not correspond)."""
    if a.shape != b.shape or not len(a):
        return []
    step = float(np.linalg.norm(b[:, :3] - a[:, :3], axis=1).max())
    radius = float(max(np.min(np.minimum(a[:, 3], b[:, 3])), 1e-3))
    n = min(max_steps, int(np.ceil(step / (0.5 * radius))))
    if n < 2:
        return []
    return [a + (b - a) * (k / n) for k in range(1, n)]


class BodyMaskHistory:
    """The robot's mask spheres over the last moments, plus the object it holds.

    A depth frame reaches the watcher some time after it was taken (transport, rendering): the
    robot was elsewhere then. The history keeps the spheres sampled over the last
    ``window_s`` seconds; a frame that arrived at ``t`` is masked with every sample since
    ``t - window_s``, so whatever pose the robot had while the frame was taken is masked.

    The held object is a sphere of ``held_radius_m`` whose centre is fixed in the hand frame
    (:attr:`RobotMask.hand`): :meth:`grasp` records it from where the object was when the hand
    closed on it (the trace start), so it is carried with the hand from then on, until
    :meth:`release`. Its size is not measured: ``held_radius_m`` bounds the objects the robot
    handles (the largest in our scenes, a 20 cm plate, has a bounding sphere of 10 cm).

    Args:
        source: the robot's mask now (see :data:`MaskInput`); called from the goal thread.
        default_radius_m: radius of points given without one.
        held_radius_m: radius of the sphere masked around a held object (m).
        max_held_offset_m: the held object's centre is taken at most this far from the hand
            (a trace start farther from the hand than that is a perception error).
        window_s: how long a sample masks frames that arrive after it (s).
        min_period_s: samples closer in time than this are not stored separately (s).
        clock: seconds, monotonic (simulated time in tests).
    """

    def __init__(
        self,
        source: Callable[[], MaskInput],
        default_radius_m: float,
        held_radius_m: float = 0.11,
        max_held_offset_m: float = 0.08,
        window_s: float = 0.3,
        min_period_s: float = 0.03,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if held_radius_m < 0 or window_s < 0:
            raise ValueError('held_radius_m and window_s must be >= 0')
        self.source = source
        self.default_radius_m = default_radius_m
        self.held_radius_m = held_radius_m
        self.max_held_offset_m = max_held_offset_m
        self.window_s = window_s
        self.min_period_s = min_period_s
        self.clock = clock
        #: samples are kept at least this long (s): a frame up to that old can be masked
        self.keep_s = window_s
        #: the held object's centre in the hand frame (None: nothing held)
        self.held_offset: np.ndarray | None = None
        self._samples: list[tuple[float, float, np.ndarray]] = []  # first t, last t, spheres
        self._last: RobotMask | None = None

    def _read(self) -> tuple[np.ndarray, np.ndarray | None]:
        mask = self.source()
        spheres = mask_spheres(mask, self.default_radius_m)
        hand = mask.hand if isinstance(mask, RobotMask) else None
        if self.held_offset is not None and hand is not None:
            centre = hand[:3, :3] @ self.held_offset + hand[:3, 3]
            spheres = np.vstack([spheres, [*centre, self.held_radius_m]])
        return spheres, hand

    def sample(self, force: bool = False) -> None:
        """Read the source now and keep the spheres (rate-limited unless ``force``)."""
        now = self.clock()
        if self._samples and not force and now - self._samples[-1][1] < self.min_period_s:
            return
        spheres, _ = self._read()
        last = self._samples[-1] if self._samples else None
        if (
            last is not None
            and last[2].shape == spheres.shape
            and (not len(spheres) or float(np.abs(last[2] - spheres).max()) < 0.003)
        ):
            self._samples[-1] = (last[0], now, last[2])  # the robot did not move
        else:
            self._samples.append((now, now, spheres))
        keep_after = now - max(2 * self.window_s, self.keep_s) - 1.0
        self._samples = [s for s in self._samples if s[1] >= keep_after]

    def spheres_since(self, t: float) -> np.ndarray:
        """(M, 4) spheres of every sample that was current at or after time ``t``.

        Between two consecutive samples the robot moved; where it moved farther than half a
        sphere's radius (samples are sparse when the goal thread is starved), the spheres are
        also placed along the way, so the swept volume is masked, not only its ends.
        """
        recent = [s for _, last, s in self._samples if last >= t]
        if not recent and self._samples:
            recent = [self._samples[-1][2]]
        parts = list(recent)
        for a, b in zip(recent, recent[1:], strict=False):
            parts.extend(_swept(a, b))
        return np.vstack(parts) if parts else np.zeros((0, 4))

    def grasp(self, object_centre: np.ndarray) -> None:
        """The hand closed on an object centred at ``object_centre`` (base frame) now."""
        self.held_offset = None
        _, hand = self._read()
        if hand is None:
            return
        local = hand[:3, :3].T @ (np.asarray(object_centre, dtype=float) - hand[:3, 3])
        n = float(np.linalg.norm(local))
        if n > self.max_held_offset_m:
            local *= self.max_held_offset_m / n
        self.held_offset = local
        self.sample(force=True)

    def release(self) -> None:
        """Nothing is held any more."""
        if self.held_offset is not None:
            self.held_offset = None
            self.sample(force=True)

    @property
    def holding(self) -> bool:
        """Whether a held object is masked."""
        return self.held_offset is not None
