"""Answer text -> metric 3D trace: parse, lift, (filter), (transform). Used by the CLI and node.

One function, :func:`answer_to_trace`, so ``robotracer lift``, ``robotracer query`` and the
perception node turn an answer into points in exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import time

import numpy as np

from robotracer_ros.filtering import (
    STATUS_DEGRADED,
    STATUS_INVALID,
    STATUS_NAMES,
    STATUS_VALID,
    FilterOptions,
    filter_trace,
    take_at,
)
from robotracer_ros.lifting import DEPTH_SOURCE_NAMES, LiftOptions, lift_trace
from robotracer_ros.parsing import COORDINATES, MAX_ANSWER_BYTES, join_notes, parse_trace
from robotracer_ros.transforms import apply_transform, validate_transform

__all__ = [
    'STATUS_DEGRADED',
    'STATUS_INVALID',
    'STATUS_VALID',
    'PipelineOptions',
    'TraceResult',
    'answer_to_trace',
]


@dataclass(frozen=True)
class PipelineOptions:
    """How an answer becomes a trace.

    Attributes:
        lift: depth source and sampling options.
        filter: trace filter options, or None for no filtering (one point per answer point,
            in order, NaN where no depth).
        max_answer_bytes: answer size limit.
        coordinates: the model's coordinate convention (``normalized_1000``,
            ``normalized_1``, ``pixels`` or ``auto``; see :mod:`robotracer_ros.parsing`).
    """

    lift: LiftOptions = field(default_factory=LiftOptions)
    filter: FilterOptions | None = None
    max_answer_bytes: int = MAX_ANSWER_BYTES
    coordinates: str = 'normalized_1000'

    def __post_init__(self) -> None:
        if self.coordinates not in COORDINATES:
            raise ValueError(
                f'coordinates {self.coordinates!r} is not one of {", ".join(COORDINATES)}'
            )


@dataclass
class TraceResult:
    """A lifted trace.

    Attributes:
        points_cam: (N, 3) metres in the camera optical frame (NaN rows: no depth).
        pixels: (N, 2) (u, v) colour-image pixels.
        depth: (N,) depth used per point, metres.
        depth_source: (N,) uint8 ``DEPTH_MODEL``/``DEPTH_SENSOR`` per point.
        disagreement: (N,) bool, model and sensor depth differ by more than the threshold.
        status: ``STATUS_VALID``/``STATUS_DEGRADED``/``STATUS_INVALID``.
        note: why the status is not valid (empty when valid).
        answer_3d: the answer carried a depth per point.
        form: the answer form the parser recognised.
        points_target: (N, 3) points in the target frame, or None when no transform was given.
        processing_time_s: parse + lift + filter + transform time, seconds.
    """

    points_cam: np.ndarray
    pixels: np.ndarray
    depth: np.ndarray
    depth_source: np.ndarray
    disagreement: np.ndarray
    status: int
    note: str
    answer_3d: bool
    form: str
    points_target: np.ndarray | None = None
    processing_time_s: float = 0.0

    @property
    def status_name(self) -> str:
        """``'valid'``, ``'degraded'`` or ``'invalid'``."""
        return STATUS_NAMES[self.status]

    @property
    def points(self) -> np.ndarray:
        """Points in the target frame if transformed, else in the camera frame."""
        return self.points_cam if self.points_target is None else self.points_target

    def depth_source_names(self) -> list[str]:
        """Per-point depth source as names (``'model'``/``'sensor'``)."""
        return [DEPTH_SOURCE_NAMES[int(c)] for c in self.depth_source]


def answer_to_trace(
    answer: str,
    *,
    width: int,
    height: int,
    K: np.ndarray,
    depth: np.ndarray | None = None,
    depth_scale: float | None = None,
    options: PipelineOptions | None = None,
    T_target_camera: np.ndarray | None = None,
    expect_depth: bool | None = None,
) -> TraceResult:
    """Turn a model's answer into a metric trace.

    Args:
        answer: the model's raw answer text.
        width: colour image width, pixels (the image the model saw).
        height: colour image height, pixels.
        K: (3, 3) colour intrinsics.
        depth: raw depth image registered to the colour image (uint16 mm / float m; any
            resolution), or None.
        depth_scale: metres per depth unit (None: 0.001 for integer, 1.0 for float images).
        options: lifting/filtering options.
        T_target_camera: optional (4, 4) transform from the camera optical frame to a target
            frame; fills ``points_target``.
        expect_depth: True: the answer must be 3D (a 3D request: a 2D answer is refused even
            where the depth image could lift it, since free-space points would land on the
            surface below them); None: required only when the depth source needs the model's
            depth (``model``, or ``fused`` without a depth image).

    Returns:
        The trace with a quality verdict. ``STATUS_INVALID`` traces must not be executed.

    Raises:
        TraceParseError: the answer holds no usable trace (the message says why;
            :class:`~robotracer_ros.parsing.ObjectNotVisible` when the model says it cannot see
            the object).
        ValueError: bad intrinsics, image size, transform, or a depth source the inputs
            cannot serve (e.g. ``sensor`` without a depth image).
    """
    t0 = time.perf_counter()
    opts = options or PipelineOptions()
    src = opts.lift.depth_source
    needs_model_depth = src == 'model' or (src == 'fused' and depth is None)
    parsed = parse_trace(
        answer,
        expect_depth=True if needs_model_depth or expect_depth else None,
        max_bytes=opts.max_answer_bytes,
        coordinates=opts.coordinates,
        image_size=(width, height),
    )
    lifted = lift_trace(
        parsed.xy,
        parsed.depth,
        width=width,
        height=height,
        K=K,
        depth_image=depth,
        depth_scale=depth_scale,
        options=opts.lift,
    )
    points, pixels, dep = lifted.points, lifted.pixels, lifted.depth
    codes, disagree, behind = lifted.depth_source, lifted.disagreement, lifted.behind_surface
    n = len(points)
    if opts.filter is not None:
        fr = filter_trace(points, opts.filter)
        pos = fr.positions
        points = fr.points
        pixels = take_at(pixels, pos)
        dep = take_at(dep, pos)
        codes = take_at(codes, pos, kind='nearest')
        disagree = take_at(disagree, pos, kind='any')
        behind = take_at(behind, pos, kind='any')
        status, note = fr.status, fr.note
    else:
        finite = np.all(np.isfinite(points), axis=1)
        missing = [str(i + 1) for i in np.flatnonzero(~finite)]
        status, note = STATUS_VALID, ''
        if int(finite.sum()) < 2:
            status = STATUS_INVALID
            note = f'only {int(finite.sum())} usable point(s) of {n}; at least 2 needed'
        elif missing:
            status = STATUS_DEGRADED
            note = f'point(s) {", ".join(missing)} have no valid depth'
    if status != STATUS_INVALID and np.any(behind):
        status = STATUS_DEGRADED
    note = join_notes(parsed.note, note)
    if np.any(behind):
        note = join_notes(
            note,
            f'{int(np.sum(behind))} point(s) lay behind the visible surface by more than the '
            'fusion threshold (model vs sensor depth); sensor depth used',
        )
    target = None
    if T_target_camera is not None:
        target = apply_transform(validate_transform(T_target_camera), points)
    return TraceResult(
        points_cam=points,
        pixels=pixels,
        depth=dep,
        depth_source=np.asarray(codes, dtype=np.uint8),
        disagreement=np.asarray(disagree, dtype=bool),
        status=status,
        note=note,
        answer_3d=parsed.is_3d,
        form=parsed.form,
        points_target=target,
        processing_time_s=time.perf_counter() - t0,
    )
