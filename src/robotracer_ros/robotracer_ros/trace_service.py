"""The perception node's request logic, without ROS: frame + request -> trace or a clear error.

Design notes: docs/design-notes.md (robotracer_ros.trace_service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
import logging
import math
import time

import numpy as np

from robotracer_ros.backends.base import (
    BAD_RESPONSE,
    NON_JSON,
    BackendAnswer,
    BackendError,
    TraceBackend,
    check_instruction,
)
from robotracer_ros.filtering import STATUS_INVALID
from robotracer_ros.lifting import DEPTH_SOURCES
from robotracer_ros.parsing import ObjectNotVisible, PointRejected, TraceParseError
from robotracer_ros.pipeline import PipelineOptions, TraceResult, answer_to_trace
from robotracer_ros.transforms import invert_transform, validate_transform

ERROR_NONE = 0
ERROR_NO_FRAME = 1
ERROR_STALE_FRAME = 2
ERROR_MODEL = 3
ERROR_BAD_ANSWER = 4
ERROR_TRANSFORM = 5
ERROR_BAD_REQUEST = 6
ERROR_INVALID_TRACE = 7
ERROR_NOT_VISIBLE = 8
ERROR_NAMES = {
    ERROR_NONE: 'none',
    ERROR_NO_FRAME: 'no_frame',
    ERROR_STALE_FRAME: 'stale_frame',
    ERROR_MODEL: 'model',
    ERROR_BAD_ANSWER: 'bad_answer',
    ERROR_TRANSFORM: 'transform',
    ERROR_BAD_REQUEST: 'bad_request',
    ERROR_INVALID_TRACE: 'invalid_trace',
    ERROR_NOT_VISIBLE: 'not_visible',
}
# BackendError kinds meaning "an answer came but is unusable" (the rest: no answer came)
_BAD_ANSWER_KINDS = (NON_JSON, BAD_RESPONSE)
LOG = logging.getLogger(__name__)
# GetTrace.depth_source request codes -> depth source names ('' = the node's default)
REQUEST_DEPTH_SOURCES = {0: '', 1: 'model', 2: 'sensor', 3: 'fused'}

# (target_frame, source_frame, stamp_s) -> T_target_source; raises LookupError with a reason
TransformLookup = Callable[[str, str, float], np.ndarray]


@dataclass
class Frame:
    """One synchronised RGB-D frame.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        depth: raw depth registered to the colour image (uint16 mm or float m), or None.
        depth_scale: metres per depth unit (None: by dtype).
        K: (3, 3) colour intrinsics.
        stamp_s: acquisition time of the colour image, seconds (node clock's time base).
        camera_frame: the colour camera's optical frame id.
    """

    rgb: np.ndarray
    depth: np.ndarray | None
    depth_scale: float | None
    K: np.ndarray
    stamp_s: float
    camera_frame: str

    @property
    def width(self) -> int:
        """Colour image width, pixels."""
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        """Colour image height, pixels."""
        return int(self.rgb.shape[0])


@dataclass(frozen=True)
class TraceRequest:
    """What the caller asked for.

    Attributes:
        instruction: natural-language instruction.
        mode_3d: False for a 2D trace (lifted with sensor depth only).
        target_frame: frame of the returned points ('' = the service's default).
        depth_source: 'model', 'sensor', 'fused' or '' (= the service's default).
    """

    instruction: str
    mode_3d: bool = True
    target_frame: str = ''
    depth_source: str = ''


@dataclass
class TraceOutcome:
    """The answer to a request.

    Attributes:
        success: True when a usable trace is in ``result``.
        error_code: ``ERROR_*`` (``ERROR_NONE`` on success).
        error_msg: why it failed (empty on success).
        result: the trace (also filled for ``ERROR_INVALID_TRACE``, for diagnostics).
        answer: the model's raw answer, when the model answered.
        frame: the frame the request used.
        target_frame: the frame of ``result.points``.
        instruction: the cleaned instruction.
        timings: seconds per stage: ``inference``, ``processing``, ``total``.
        bad_point: ``ERROR_BAD_ANSWER`` for one point of the answer: its number (1 = the
            first); 0 otherwise.
        bad_point_depth_m: that point's answered depth when the depth was the problem (<= 0:
            behind the camera), else NaN.
    """

    success: bool
    error_code: int
    error_msg: str
    result: TraceResult | None = None
    answer: BackendAnswer | None = None
    frame: Frame | None = None
    target_frame: str = ''
    instruction: str = ''
    timings: dict[str, float] = field(default_factory=dict)
    bad_point: int = 0
    bad_point_depth_m: float = math.nan


class StaticTransforms:
    """Transform lookup from fixed transforms (used where tf2_ros is not available).

    Holds ``T_parent_child`` per (parent, child) and answers lookups for the identity, a stored
    transform, or its inverse.
    """

    def __init__(self) -> None:
        self._t: dict[tuple[str, str], np.ndarray] = {}

    def add(self, parent: str, child: str, T_parent_child: np.ndarray) -> None:
        """Store ``T_parent_child`` (maps points in ``child`` into ``parent``).

        Raises:
            ValueError: empty frame names or not a rigid transform.
        """
        if not parent or not child:
            raise ValueError('static transform needs non-empty parent and child frame names')
        self._t[(parent, child)] = validate_transform(T_parent_child)

    def __call__(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        """Return ``T_target_source``.

        Raises:
            LookupError: no stored transform connects the two frames (lists what is known).
        """
        if target == source:
            return np.eye(4)
        if (target, source) in self._t:
            return self._t[(target, source)]
        if (source, target) in self._t:
            return invert_transform(self._t[(source, target)])
        known = ', '.join(f'{c}->{p}' for p, c in self._t) or 'none'
        raise LookupError(
            f'no static transform connects them (tf2_ros unavailable; static transforms '
            f'known: {known})'
        )


class TraceService:
    """Turn a frame + request into a trace, or an error that says why."""

    def __init__(
        self,
        backend: TraceBackend,
        *,
        options: PipelineOptions | None = None,
        default_target_frame: str = '',
        max_frame_age_s: float = 1.0,
        lookup_transform: TransformLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the service.

        Args:
            backend: the model backend.
            options: lifting/filtering options (their depth source is the default).
            default_target_frame: frame for requests without one ('' = the camera frame).
            max_frame_age_s: frames older than this are stale (0 = no limit), seconds.
            lookup_transform: ``(target, source, stamp) -> T_target_source``; None = identity
                only.
            clock: current time in the frames' time base, seconds.
        """
        self.backend = backend
        self.options = options or PipelineOptions()
        self.default_target_frame = default_target_frame
        self.max_frame_age_s = float(max_frame_age_s)
        self.lookup_transform = lookup_transform or StaticTransforms()
        self.clock = clock

    def handle(
        self, request: TraceRequest, frame: Frame | None, *, no_frame_reason: str = ''
    ) -> TraceOutcome:
        """Answer one request on the given frame.

        Args:
            request: the request.
            frame: the latest synchronised frame, or None.
            no_frame_reason: why there is no frame (e.g. which topic never arrived).

        Returns:
            The outcome; never raises for bad input, the model or the answer.
        """
        t0 = time.perf_counter()

        def fail(code: int, msg: str, **kw: object) -> TraceOutcome:
            kw.setdefault('timings', {'total': time.perf_counter() - t0})
            return TraceOutcome(False, code, msg, **kw)  # type: ignore[arg-type]

        try:
            instruction = check_instruction(request.instruction)
        except ValueError as exc:
            return fail(ERROR_BAD_REQUEST, f'bad request: {exc}')
        if request.depth_source and request.depth_source not in DEPTH_SOURCES:
            return fail(
                ERROR_BAD_REQUEST,
                f'bad request: depth_source '
                f'{request.depth_source!r} is not one of '
                f'{", ".join(DEPTH_SOURCES)}',
            )
        if frame is None:
            return fail(
                ERROR_NO_FRAME,
                no_frame_reason
                or 'no synchronised colour + depth + camera_info frame received yet',
            )
        now = self.clock()
        age = now - frame.stamp_s
        if self.max_frame_age_s > 0 and age > self.max_frame_age_s:
            return fail(
                ERROR_STALE_FRAME,
                f'the latest frame is {age:.2f} s old (limit '
                f'max_frame_age_s = {self.max_frame_age_s:g} s); is '
                'the camera still publishing?',
                frame=frame,
            )
        if self.max_frame_age_s > 0 and age < -self.max_frame_age_s:
            return fail(
                ERROR_STALE_FRAME,
                f'the latest frame is stamped {-age:.2f} s in the '
                'future: camera and node clocks disagree (check '
                'use_sim_time)',
                frame=frame,
            )
        target = request.target_frame or self.default_target_frame or frame.camera_frame
        try:
            T = self.lookup_transform(target, frame.camera_frame, frame.stamp_s)
            T = validate_transform(T)
        except (LookupError, ValueError) as exc:
            return fail(
                ERROR_TRANSFORM,
                f'cannot transform {frame.camera_frame!r} to {target!r}: {exc}',
                frame=frame,
            )
        source = request.depth_source or self.options.lift.depth_source
        if not request.mode_3d:
            source = 'sensor'
        if source == 'sensor' and frame.depth is None:
            why = 'a 2D trace' if not request.mode_3d else "depth_source 'sensor'"
            return fail(
                ERROR_BAD_REQUEST,
                f'bad request: {why} needs a depth image and this '
                'node has none (use_depth is false)',
                frame=frame,
            )
        opts = self.options
        if source != opts.lift.depth_source:
            opts = replace(opts, lift=replace(opts.lift, depth_source=source))
        backend_name = self.backend.name
        try:
            answer = self.backend(
                frame.rgb, frame.depth, frame.K, instruction, mode_3d=request.mode_3d
            )
        except BackendError as exc:
            code = ERROR_BAD_ANSWER if exc.kind in _BAD_ANSWER_KINDS else ERROR_MODEL
            return fail(
                code,
                f'model backend {backend_name} failed ({exc.kind}): {exc}',
                frame=frame,
                instruction=instruction,
            )
        except Exception as exc:  # a backend bug must not take the node down: say what it was
            LOG.exception('model backend %s raised unexpectedly', backend_name)
            return fail(
                ERROR_MODEL,
                f'model backend {backend_name} failed unexpectedly: {type(exc).__name__}: {exc}',
                frame=frame,
                instruction=instruction,
            )
        if not isinstance(answer, BackendAnswer) or not isinstance(answer.text, str):
            return fail(
                ERROR_MODEL,
                f'model backend {backend_name} returned {type(answer).__name__}, not an answer',
                frame=frame,
                instruction=instruction,
            )
        expect_depth = True if request.mode_3d and source != 'sensor' else None
        try:
            result = answer_to_trace(
                answer.text,
                width=frame.width,
                height=frame.height,
                K=frame.K,
                depth=frame.depth,
                depth_scale=frame.depth_scale,
                options=opts,
                T_target_camera=T,
                expect_depth=expect_depth,
            )
        except ObjectNotVisible as exc:
            return fail(
                ERROR_NOT_VISIBLE,
                f'object not visible: {exc}',
                answer=answer,
                frame=frame,
                target_frame=target,
                instruction=instruction,
            )
        except (TraceParseError, ValueError) as exc:
            hint = ''
            if answer.truncated:
                hint = (
                    ' (the model stopped at its token limit, so the answer may be cut off: '
                    'raise max_tokens in the model config)'
                )
            rejected = exc if isinstance(exc, PointRejected) else None
            return fail(
                ERROR_BAD_ANSWER,
                f'the model answer could not be used: {exc}{hint}',
                answer=answer,
                frame=frame,
                target_frame=target,
                instruction=instruction,
                bad_point=rejected.index if rejected else 0,
                bad_point_depth_m=rejected.depth_m if rejected else math.nan,
            )
        except Exception as exc:  # a bug in parse/lift/filter: the request fails, with its name
            LOG.exception('turning the answer into a trace raised unexpectedly')
            return fail(
                ERROR_BAD_ANSWER,
                f'the model answer could not be used: unexpected {type(exc).__name__}: {exc}',
                answer=answer,
                frame=frame,
                target_frame=target,
                instruction=instruction,
            )
        timings = {
            'inference': answer.elapsed_s,
            'processing': result.processing_time_s,
            'total': time.perf_counter() - t0,
        }
        if result.status == STATUS_INVALID:
            return fail(
                ERROR_INVALID_TRACE,
                f'no usable trace: {result.note}',
                result=result,
                answer=answer,
                frame=frame,
                target_frame=target,
                instruction=instruction,
                timings=timings,
            )
        return TraceOutcome(
            True,
            ERROR_NONE,
            '',
            result=result,
            answer=answer,
            frame=frame,
            target_frame=target,
            instruction=instruction,
            timings=timings,
        )
