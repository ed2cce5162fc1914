"""Perception node: RGB-D topics + a model backend -> ``/robotracer/get_trace`` and trace topics.

Thin ROS glue around :class:`robotracer_ros.trace_service.TraceService`: it declares the
parameters, keeps the latest colour + depth + camera_info set (approximately synchronised with
:class:`robotracer_ros.sync.ApproximateSynchronizer`; ``message_filters`` is not on PyPI),
converts messages with :mod:`robotracer_ros.images`, and publishes the results.

Interfaces (names are parameters; topics are also remappable):

- subscribes ``color_topic`` (sensor_msgs/Image rgb8/bgr8/...), ``depth_topic`` (16UC1 mm or
  32FC1 m, registered to colour), ``camera_info_topic`` (sensor_msgs/CameraInfo);
- serves ``service_name`` (robotracer_msgs/srv/GetTrace) in its own callback group, on a
  MultiThreadedExecutor, so a slow model never blocks the image callbacks;
- publishes ``trace_topic`` (robotracer_msgs/SpatialTrace, transient local = latched),
  ``markers_topic`` (visualization_msgs/MarkerArray: line strip + numbered spheres, start green,
  end red), ``annotated_image_topic`` (sensor_msgs/Image rgb8) -- only for successful requests.

Sensor faults end a request before the model is asked, with a reason that names the topic and
the value (see ``_frame_for`` and ``_stream_diagnosis``):

- a stream that stopped (colour, depth or camera_info): once the last synchronised set is older
  than ``max_frame_age_s``, ``ERROR_STALE_FRAME`` names each silent topic and how long ago its
  last message came; with nothing received yet on a topic, ``ERROR_NO_FRAME`` names it;
- stamps further apart than ``sync_slop_s``: nothing is paired, and the error gives the
  tightest set the queued stamps could form and each stream's offset;
- camera_info with a zero, negative or non-finite focal length (or another malformed K), or
  sized for another image: ``ERROR_NO_FRAME`` with fx, fy, cx, cy;
- a depth image with fewer than ``lifting.MIN_VALID_DEPTH_FRACTION`` usable readings (all
  zeros, all NaN, all out of [min_depth_m, max_depth_m]), an unknown depth encoding, or a depth
  image whose aspect ratio differs from colour's (not registered): ``ERROR_NO_FRAME`` when the
  request needs sensor depth (``sensor``, ``fused`` and 2D traces). A ``model``-depth request
  does not: it goes on without the broken depth image (the model is not fed a garbage depth
  input either) and the trace's ``quality_note`` says so. ``fused`` does not silently fall
  back to the model's depth: the node was configured with a depth camera (``use_depth``) and a
  broken one is a fault to report, not to hide;
- a depth image of another resolution but the same aspect ratio (e.g. 320x240 depth for
  640x480 colour) is fine: it is resampled, nearest neighbour, onto the colour grid, so the model
  and the lifting see a registered pair;
- no transform from the camera frame to the target frame: ``ERROR_TRANSFORM`` naming both.

A plain node, not a lifecycle node: its only costly resource is the model backend, created once
at start-up (a configuration error stops the node with the reason), and the bringup runs the
same executables with and without ``launch`` (no lifecycle manager is available here).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from robotracer_ros import images
from robotracer_ros.annotate import draw_trace, point_colours
from robotracer_ros.backends import BACKENDS, BackendError, make_backend
from robotracer_ros.filtering import FilterOptions
from robotracer_ros.lifting import (
    DEPTH_SOURCES,
    MIN_VALID_DEPTH_FRACTION,
    LiftOptions,
    check_depth_registration,
    depth_coverage,
    validate_intrinsics,
)
from robotracer_ros.pipeline import PipelineOptions
from robotracer_ros.sync import ApproximateSynchronizer
from robotracer_ros.trace_service import (
    ERROR_STALE_FRAME,
    REQUEST_DEPTH_SOURCES,
    Frame,
    StaticTransforms,
    TraceOutcome,
    TraceRequest,
    TraceService,
)
from robotracer_ros.transforms import transform_from_translation_quaternion

try:  # tf2_ros exists on a full ROS install only (not on PyPI)
    import tf2_ros  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the install
    tf2_ros = None

CHOICES: dict[str, tuple[str, ...]] = {
    'backend': tuple(BACKENDS),
    'qos_reliability': ('reliable', 'best_effort'),
    'depth_source': DEPTH_SOURCES,
    'transport': ('base64', 'paths'),
    'prompt_style': ('', 'robotracer', 'json'),
    'dtype': ('auto', 'float32', 'float16', 'bfloat16'),
}
DYNAMIC = ('max_frame_age_s', 'depth_source')
# what each synchronised stream is called in messages
STREAM_LABELS = {'color': 'colour image', 'depth': 'depth image', 'info': 'camera_info'}

# name: (default, description, range (lo, hi) or None)
PARAMETERS: dict[str, tuple[Any, str, tuple[float, float] | None]] = {
    'color_topic': (
        '/camera/camera/color/image_raw',
        'colour image topic (sensor_msgs/Image)',
        None,
    ),
    'depth_topic': (
        '/camera/camera/aligned_depth_to_color/image_raw',
        'depth image topic registered to colour (16UC1 mm or 32FC1 m)',
        None,
    ),
    'camera_info_topic': ('/camera/camera/color/camera_info', 'colour camera_info topic', None),
    'use_depth': (True, 'subscribe to the depth image (false: model depth only)', None),
    'qos_reliability': (
        'reliable',
        'image/camera_info subscription reliability; match the publisher (reliable | best_effort)',
        None,
    ),
    'qos_depth': (5, 'image/camera_info subscription queue depth, messages', (1, 100)),
    'sync_slop_s': (
        0.02,
        'largest stamp spread of a synchronised colour/depth/info set, s',
        (0.0, 1.0),
    ),
    'sync_queue_size': (10, 'messages kept per stream for synchronisation', (1, 100)),
    'max_frame_age_s': (1.0, 'frames older than this are stale (0 = no limit), s', (0.0, 3600.0)),
    'camera_frame': ('', "optical frame of the camera ('' = the colour image's frame_id)", None),
    'target_frame': ('', "frame of the returned points ('' = the camera frame)", None),
    'use_tf2': (True, 'look transforms up with tf2_ros when it is importable', None),
    'tf_timeout_s': (0.2, 'how long to wait for a tf2 transform, s', (0.0, 10.0)),
    'static_transform.parent_frame': (
        '',
        "without tf2: the frame the static transform maps into ('' = none)",
        None,
    ),
    'static_transform.child_frame': (
        '',
        "without tf2: the static transform's child frame ('' = the camera frame)",
        None,
    ),
    'static_transform.xyz': ([0.0, 0.0, 0.0], 'child frame origin in the parent frame, m', None),
    'static_transform.xyzw': (
        [0.0, 0.0, 0.0, 1.0],
        'child frame orientation in the parent frame, quaternion (x, y, z, w)',
        None,
    ),
    'backend': (
        'robotracer_http',
        'model backend: robotracer_http | openai | transformers | replay',
        None,
    ),
    'model_url': ('http://127.0.0.1:25547', 'server URL (robotracer_http, openai)', None),
    'model_name': ('', "model name ('' = backend default); transformers: checkpoint folder", None),
    'transport': ('base64', 'robotracer_http request form: base64 | paths', None),
    'shared_dir': ('', "robotracer_http paths form: folder the server reads ('' = /tmp)", None),
    'api_key_env': ('OPENAI_API_KEY', 'openai: environment variable holding the API key', None),
    'prompt_style': (
        '',
        "openai/transformers prompt: robotracer | json ('' = backend default)",
        None,
    ),
    'png_compression': (
        0,
        'zlib level of the PNGs sent to HTTP backends (0 = uncompressed, fastest)',
        (0, 9),
    ),
    'request_timeout_s': (60.0, 'per-attempt model request timeout, s', (0.1, 3600.0)),
    'request_retries': (1, 'extra attempts on connection errors, timeouts, HTTP 429/5xx', (0, 10)),
    'device': ('cpu', 'transformers: torch device (cpu, cuda, cuda:1, ...)', None),
    'dtype': ('auto', 'transformers: auto | float32 | float16 | bfloat16', None),
    'max_new_tokens': (256, 'openai/transformers: answer token limit', (1, 8192)),
    'replay_path': ('', 'replay: JSONL file of recorded answers', None),
    'depth_source': ('fused', 'default depth per point: model | sensor | fused', None),
    'depth_window_px': (2, 'half-size of the sensor depth window, depth pixels', (0, 50)),
    'min_depth_m': (0.05, 'nearest valid depth, m', (0.0, 100.0)),
    'max_depth_m': (10.0, 'farthest valid depth, m', (0.01, 100.0)),
    'fuse_threshold_m': (0.05, 'model/sensor depth disagreement threshold, m', (0.0, 10.0)),
    'fuse_threshold_rel': (
        0.03,
        'relative disagreement threshold (fraction of sensor depth)',
        (0.0, 1.0),
    ),
    'filter.enabled': (True, 'drop invalid points, merge duplicates, reject outlier jumps', None),
    'filter.merge_distance_m': (0.005, 'merge consecutive points closer than this, m', (0.0, 1.0)),
    'filter.max_jump_m': (
        0.35,
        'a step is an outlier only if longer than this, m',
        (0.001, 100.0),
    ),
    'filter.jump_factor': (4.0, '...and longer than this many median steps', (1.0, 100.0)),
    'filter.resample_spacing_m': (
        0.0,
        'resample the trace to this spacing (0 = off), m',
        (0.0, 10.0),
    ),
    'filter.min_points': (2, 'fewer usable points make the trace invalid', (1, 100)),
    'service_name': ('/robotracer/get_trace', 'GetTrace service name', None),
    'trace_topic': ('/robotracer/trace', 'SpatialTrace output topic (latched)', None),
    'markers_topic': ('/robotracer/trace_markers', 'MarkerArray output topic (latched)', None),
    'annotated_image_topic': ('/robotracer/annotated_image', 'trace drawn on the frame', None),
    'publish_annotated_image': (True, 'publish the annotated image', None),
    'marker_scale_m': (0.02, 'sphere diameter of the trace markers, m', (0.001, 1.0)),
}


def _descriptor(
    name: str, description: str, rng: tuple[float, float] | None, default: Any
) -> ParameterDescriptor:
    extra = (
        f'one of: {", ".join(c or "(empty)" for c in CHOICES[name])}' if name in CHOICES else ''
    )
    d = ParameterDescriptor(
        description=description, additional_constraints=extra, read_only=name not in DYNAMIC
    )
    if rng is not None and isinstance(default, float):
        d.floating_point_range = [
            FloatingPointRange(from_value=float(rng[0]), to_value=float(rng[1]), step=0.0)
        ]
    elif rng is not None and isinstance(default, int) and not isinstance(default, bool):
        d.integer_range = [IntegerRange(from_value=int(rng[0]), to_value=int(rng[1]), step=1)]
    return d


def _stamp_s(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class ConfigError(ValueError):
    """A parameter value the node cannot run with."""


class PerceptionNode(Node):
    """The perception node (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('perception_node', **kwargs)
        for name, (default, desc, rng) in PARAMETERS.items():
            self.declare_parameter(name, default, _descriptor(name, desc, rng, default))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        for name, choices in CHOICES.items():
            if p[name] not in choices:
                raise ConfigError(f'parameter {name}={p[name]!r} is not one of {choices}')
        if p['min_depth_m'] >= p['max_depth_m']:
            raise ConfigError('min_depth_m must be smaller than max_depth_m')
        self.p = p
        self.backend = make_backend(p['backend'], **self._backend_options(p))
        self.service = TraceService(
            self.backend,
            options=self._pipeline_options(p['depth_source']),
            default_target_frame=p['target_frame'],
            max_frame_age_s=p['max_frame_age_s'],
            lookup_transform=self._lookup_transform,
            clock=lambda: self.get_clock().now().nanoseconds * 1e-9,
        )
        self._static = self._static_transform(p)
        self._tf_buffer = None
        if p['use_tf2'] and tf2_ros is not None:  # pragma: no cover - full ROS install only
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)

        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        from robotracer_msgs.msg import SpatialTrace
        from robotracer_msgs.srv import GetTrace

        self._Image = Image
        self._SpatialTrace = SpatialTrace
        streams = ['color', 'info'] + (['depth'] if p['use_depth'] else [])
        self.sync = ApproximateSynchronizer(
            streams, slop_s=p['sync_slop_s'], queue_size=p['sync_queue_size']
        )
        self._topics = {
            'color': p['color_topic'],
            'depth': p['depth_topic'],
            'info': p['camera_info_topic'],
        }
        self._latest: dict[str, tuple[float, Any]] | None = None
        self._lock = threading.Lock()
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=p['qos_depth'],
            reliability=ReliabilityPolicy.RELIABLE
            if p['qos_reliability'] == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT,
        )
        self.images_group = MutuallyExclusiveCallbackGroup()
        self.service_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(
            Image,
            p['color_topic'],
            lambda m: self._on_msg('color', m),
            qos,
            callback_group=self.images_group,
        )
        self.create_subscription(
            CameraInfo,
            p['camera_info_topic'],
            lambda m: self._on_msg('info', m),
            qos,
            callback_group=self.images_group,
        )
        if p['use_depth']:
            self.create_subscription(
                Image,
                p['depth_topic'],
                lambda m: self._on_msg('depth', m),
                qos,
                callback_group=self.images_group,
            )
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.trace_pub = self.create_publisher(SpatialTrace, p['trace_topic'], latched)
        self.markers_pub = self.create_publisher(MarkerArray, p['markers_topic'], latched)
        self.image_pub = self.create_publisher(Image, p['annotated_image_topic'], latched)
        self.create_service(
            GetTrace, p['service_name'], self._on_get_trace, callback_group=self.service_group
        )
        self._viz_queue: queue.Queue = queue.Queue(maxsize=4)
        self._viz_thread: threading.Thread | None = threading.Thread(
            target=self._viz_worker, name='perception_viz', daemon=True
        )
        self._viz_thread.start()
        self.create_timer(5.0, self._warn_if_waiting, callback_group=self.images_group)
        tf_mode = (
            'tf2'
            if self._tf_buffer is not None
            else (
                f'static {p["static_transform.parent_frame"]} <- camera'
                if p['static_transform.parent_frame']
                else 'camera frame only'
            )
        )
        self.get_logger().info(
            f'ready: backend {getattr(self.backend, "model_id", p["backend"])}'
            f'{" at " + p["model_url"] if p["backend"] in ("robotracer_http", "openai") else ""}'
            f'; colour {self.resolve_topic_name(p["color_topic"])}, depth '
            f'{self.resolve_topic_name(p["depth_topic"]) if p["use_depth"] else "(off)"}, '
            f'info {self.resolve_topic_name(p["camera_info_topic"])} ({p["qos_reliability"]}, '
            f'depth {p["qos_depth"]}); target frame {p["target_frame"] or "(camera)"} via '
            f'{tf_mode}; service {p["service_name"]}'
        )

    # ---------------------------------------------------------------- configuration

    @staticmethod
    def _backend_options(p: dict[str, Any]) -> dict[str, Any]:
        name = p['backend']
        if name == 'robotracer_http':
            return {
                'url': p['model_url'],
                'model': p['model_name'],
                'transport': p['transport'],
                'shared_dir': p['shared_dir'],
                'timeout_s': p['request_timeout_s'],
                'retries': p['request_retries'],
                'png_compression': p['png_compression'],
            }
        if name == 'openai':
            return {
                'url': p['model_url'],
                'model': p['model_name'],
                'api_key_env': p['api_key_env'],
                'prompt_style': p['prompt_style'],
                'timeout_s': p['request_timeout_s'],
                'retries': p['request_retries'],
                'png_compression': p['png_compression'],
                'max_tokens': p['max_new_tokens'],
            }
        if name == 'transformers':
            if not p['model_name']:
                raise ConfigError('backend transformers needs model_name = a checkpoint folder')
            return {
                'model_path': p['model_name'],
                'device': p['device'],
                'dtype': p['dtype'],
                'prompt_style': p['prompt_style'],
                'max_new_tokens': p['max_new_tokens'],
            }
        if not p['replay_path']:
            raise ConfigError('backend replay needs replay_path = a JSONL file')
        return {'path': p['replay_path']}

    def _pipeline_options(self, depth_source: str) -> PipelineOptions:
        p = self.p
        lift = LiftOptions(
            depth_source=depth_source,
            window_px=p['depth_window_px'],
            min_depth_m=p['min_depth_m'],
            max_depth_m=p['max_depth_m'],
            fuse_threshold_m=p['fuse_threshold_m'],
            fuse_threshold_rel=p['fuse_threshold_rel'],
        )
        filt = None
        if p['filter.enabled']:
            filt = FilterOptions(
                min_depth_m=p['min_depth_m'],
                max_depth_m=p['max_depth_m'],
                merge_distance_m=p['filter.merge_distance_m'],
                max_jump_m=p['filter.max_jump_m'],
                jump_factor=p['filter.jump_factor'],
                resample_spacing_m=p['filter.resample_spacing_m'] or None,
                min_points=p['filter.min_points'],
            )
        return PipelineOptions(lift=lift, filter=filt)

    @staticmethod
    def _static_transform(p: dict[str, Any]) -> tuple[str, str, np.ndarray] | None:
        if not p['static_transform.parent_frame']:
            return None
        try:
            T = transform_from_translation_quaternion(
                p['static_transform.xyz'], p['static_transform.xyzw']
            )
        except ValueError as exc:
            raise ConfigError(f'static_transform: {exc}') from exc
        return p['static_transform.parent_frame'], p['static_transform.child_frame'], T

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for prm in params:
            if prm.name in CHOICES and prm.value not in CHOICES[prm.name]:
                return SetParametersResult(
                    successful=False,
                    reason=f'{prm.name}={prm.value!r} is not one of {CHOICES[prm.name]}',
                )
        for prm in params:
            if not hasattr(self, 'service'):
                break
            if prm.name == 'max_frame_age_s':
                self.service.max_frame_age_s = float(prm.value)
            elif prm.name == 'depth_source':
                self.p['depth_source'] = prm.value
                self.service.options = self._pipeline_options(prm.value)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- transforms

    def _lookup_transform(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        if target == source:
            return np.eye(4)
        if self._tf_buffer is not None:  # pragma: no cover - full ROS install only
            from rclpy.duration import Duration
            from rclpy.time import Time

            try:
                tf = self._tf_buffer.lookup_transform(
                    target,
                    source,
                    Time(nanoseconds=int(stamp_s * 1e9)),
                    timeout=Duration(nanoseconds=int(self.p['tf_timeout_s'] * 1e9)),
                )
            except Exception as exc:  # tf2 raises several exception types
                raise LookupError(f'tf2: {exc}') from exc
            t, q = tf.transform.translation, tf.transform.rotation
            return transform_from_translation_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])
        static = StaticTransforms()
        if self._static is not None:
            parent, child, T = self._static
            static.add(parent, child or source, T)
        return static(target, source, stamp_s)

    # ---------------------------------------------------------------- frames

    def _on_msg(self, stream: str, msg: Any) -> None:
        matched = self.sync.add(stream, _stamp_s(msg.header.stamp), msg)
        if matched is not None:
            with self._lock:
                self._latest = matched

    def _stream_name(self, stream: str) -> str:
        return f'{STREAM_LABELS[stream]} on {self.resolve_topic_name(self._topics[stream])}'

    def _stream_diagnosis(self) -> str:
        """Why no fresh synchronised set forms: silent topics, or stamps beyond the slop.

        Returns:
            A sentence, or '' when every stream arrives and the stamps can be paired.
        """
        limit = self.service.max_frame_age_s or 1.0
        silent = self.sync.silent_for()
        never = [s for s, t in silent.items() if t is None]
        stopped = [(s, t) for s, t in silent.items() if t is not None and t > limit]
        live = [STREAM_LABELS[s] for s, t in silent.items() if t is not None and t <= limit]
        parts = [f'nothing received yet for {self._stream_name(s)}' for s in never]
        parts += [
            f'{self._stream_name(s)} stopped: last message {t:.1f} s ago' for s, t in stopped
        ]
        if parts:
            still = f' ({", ".join(live)} still arriving)' if live else ''
            return '; '.join(parts) + still
        closest = self.sync.closest_set()
        if closest is None:
            return ''
        spread = max(closest.values()) - min(closest.values())
        if spread <= self.sync.slop_s:
            return ''
        latest = {k: v for k, v in self.sync.last_stamp_s.items() if v is not None}
        ref = 'color' if 'color' in latest else next(iter(latest))
        offsets = ', '.join(
            f'{STREAM_LABELS[s]} {t - latest[ref]:+.3f} s' for s, t in latest.items() if s != ref
        )
        return (
            f'every topic is arriving but no set of stamps lies within sync_slop_s='
            f'{self.sync.slop_s:g} s, so nothing is paired (the closest queued set spans '
            f'{spread:.3f} s; latest stamps relative to the {STREAM_LABELS[ref]}: {offsets}); '
            'is the depth registered to this colour stream, or do the drivers stamp with '
            'different clocks?'
        )

    def _no_frame_reason(self) -> str:
        counts = ', '.join(f'{STREAM_LABELS[s]} {n}' for s, n in self.sync.received.items())
        diagnosis = self._stream_diagnosis()
        if self.sync.missing():
            return (
                f'no synchronised frame yet: {diagnosis} (messages so far: {counts}); check the '
                f'topic names and that qos_reliability={self.p["qos_reliability"]} matches the '
                'publisher'
            )
        return (
            f'no synchronised frame yet: {diagnosis or "no set within sync_slop_s yet"} '
            f'(messages so far: {counts})'
        )

    def _warn_if_waiting(self) -> None:
        if self._latest is None:
            self.get_logger().warn(self._no_frame_reason(), throttle_duration_sec=10.0)
            return
        diagnosis = self._stream_diagnosis()
        if diagnosis:
            self.get_logger().warn(
                f'camera input interrupted: {diagnosis}', throttle_duration_sec=10.0
            )

    def current_frame(self) -> tuple[Frame | None, str, Any]:
        """Convert the latest synchronised set into a Frame (for the node's default request).

        Returns:
            (frame or None, reason when None, colour header).
        """
        frame, reason, header, _ = self._frame_for(
            needs_sensor_depth=self.p['depth_source'] != 'model'
        )
        return frame, reason, header

    def _frame_for(self, *, needs_sensor_depth: bool) -> tuple[Frame | None, str, Any, str]:
        """Convert and check the latest synchronised set.

        Args:
            needs_sensor_depth: the request lifts with sensor depth (``sensor``, ``fused``, 2D);
                False: an unusable depth image is left out instead of failing the request.

        Returns:
            (frame or None, reason when None, colour header, note on what was left out).
        """
        with self._lock:
            latest = self._latest
        if latest is None:
            return None, self._no_frame_reason(), None, ''
        color, info = latest['color'][1], latest['info'][1]
        depth_msg = latest['depth'][1] if 'depth' in latest else None
        try:
            raw = images.image_to_numpy(
                color.encoding,
                color.height,
                color.width,
                color.step,
                color.data,
                color.is_bigendian,
            )
            rgb = images.to_rgb(raw, color.encoding)
        except ValueError as exc:
            return None, f'{self._stream_name("color")}: {exc}', None, ''
        try:
            K = validate_intrinsics(np.asarray(info.k, dtype=float).reshape(3, 3))
        except ValueError as exc:
            return (
                None,
                (
                    f'{self._stream_name("info")} has unusable intrinsics K: {exc}; is the '
                    'camera calibrated?'
                ),
                None,
                '',
            )
        if info.width and (info.width, info.height) != (color.width, color.height):
            return (
                None,
                (
                    f'{self._stream_name("info")} is for {info.width}x{info.height} but the '
                    f'colour image is {color.width}x{color.height}'
                ),
                None,
                '',
            )
        depth = scale = None
        note = ''
        if depth_msg is not None:
            depth, scale, problem = self._checked_depth(depth_msg, color.width, color.height)
            if problem and needs_sensor_depth:
                return (
                    None,
                    f"{problem}; only depth_source 'model' works without it",
                    None,
                    '',
                )
            if problem:
                note = f'sensor depth left out: {problem}'
                self.get_logger().warn(note, throttle_duration_sec=10.0)
        camera_frame = self.p['camera_frame'] or color.header.frame_id or info.header.frame_id
        if not camera_frame:
            return (
                None,
                'the colour image has no header.frame_id: set the camera_frame parameter',
                None,
                '',
            )
        frame = Frame(rgb, depth, scale, K, _stamp_s(color.header.stamp), camera_frame)
        return frame, '', color.header, note

    def _checked_depth(
        self, msg: Any, width: int, height: int
    ) -> tuple[np.ndarray | None, float | None, str]:
        """Decode a depth image and check it can be lifted from, on the colour grid.

        Returns:
            (depth on the colour grid, metres per unit, '') or (None, None, what is wrong).
        """
        name = self._stream_name('depth')
        try:
            scale = images.depth_scale_for(msg.encoding)
            depth = images.image_to_numpy(
                msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian
            )
            check_depth_registration((msg.width, msg.height), (width, height))
        except ValueError as exc:
            return None, None, f'{name}: {exc}'
        lo, hi = self.p['min_depth_m'], self.p['max_depth_m']
        cov = depth_coverage(depth, scale=scale, min_depth_m=lo, max_depth_m=hi)
        if cov.fraction < MIN_VALID_DEPTH_FRACTION:
            return (
                None,
                None,
                (
                    f'{name} ({msg.encoding}, {msg.width}x{msg.height}) has {cov.describe()}: '
                    f'fewer than {100 * MIN_VALID_DEPTH_FRACTION:g}% of its readings lie in '
                    f'min_depth_m-max_depth_m = {lo:g}-{hi:g} m, so a lifted trace would be '
                    'garbage (is the depth camera covered, too close or failing?)'
                ),
            )
        return images.resize_depth_nearest(depth, width, height), scale, ''

    # ---------------------------------------------------------------- service

    def _on_get_trace(self, request: Any, response: Any) -> Any:
        t0 = time.perf_counter()
        depth_source = REQUEST_DEPTH_SOURCES.get(
            int(request.depth_source), f'code {int(request.depth_source)}'
        )
        effective = 'sensor' if request.trace_2d else (depth_source or self.p['depth_source'])
        frame, reason, header, note = self._frame_for(needs_sensor_depth=effective != 'model')
        req = TraceRequest(
            request.instruction,
            mode_3d=not request.trace_2d,
            target_frame=request.target_frame,
            depth_source=depth_source,
        )
        outcome = self.service.handle(req, frame, no_frame_reason=reason)
        if outcome.error_code == ERROR_STALE_FRAME:
            diagnosis = self._stream_diagnosis() or (
                'every topic is arriving and pairing, so the camera stamps and the node clock '
                'disagree (use_sim_time, time sync)'
            )
            outcome.error_msg = f'{outcome.error_msg} -- {diagnosis}'
        response.success = outcome.success
        response.error_code = outcome.error_code
        response.error_msg = outcome.error_msg
        if outcome.success:
            response.trace = self.trace_message(outcome, header)
            if note:
                response.trace.quality_note = '; '.join(
                    n for n in (response.trace.quality_note, note) if n
                )
            self.trace_pub.publish(response.trace)
            node_s = time.perf_counter() - t0 - outcome.timings['inference']
            try:  # markers, annotated image and the log line after the response is sent
                self._viz_queue.put_nowait((outcome, response.trace, header, node_s))
            except queue.Full:
                self.get_logger().warn(
                    'visualisation is falling behind: markers/annotated image of this trace '
                    'skipped',
                    throttle_duration_sec=10.0,
                )
        else:
            self.get_logger().warn(
                f'get_trace {request.instruction!r} failed (error {outcome.error_code}): '
                f'{outcome.error_msg}'
            )
        return response

    # ---------------------------------------------------------------- output messages

    def trace_message(self, outcome: TraceOutcome, header: Any) -> Any:
        """Build the SpatialTrace of a successful outcome."""
        from geometry_msgs.msg import Point

        r, frame, answer = outcome.result, outcome.frame, outcome.answer
        assert r is not None and frame is not None and answer is not None
        msg = self._SpatialTrace()
        msg.header.stamp = header.stamp
        msg.header.frame_id = outcome.target_frame
        msg.instruction = outcome.instruction
        msg.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in r.points]
        msg.pixel_u = [float(v) for v in r.pixels[:, 0]]
        msg.pixel_v = [float(v) for v in r.pixels[:, 1]]
        msg.depth = [float(v) for v in r.depth]
        msg.depth_source = [int(v) for v in r.depth_source]
        msg.depth_disagreement = [bool(v) for v in r.disagreement]
        msg.camera_frame_id = frame.camera_frame
        msg.image_width = frame.width
        msg.image_height = frame.height
        msg.model_id = answer.model_id
        msg.raw_answer = answer.text
        msg.inference_time = float(answer.elapsed_s)
        msg.processing_time = float(r.processing_time_s)
        msg.status = int(r.status)
        msg.quality_note = r.note
        return msg

    def marker_array(self, trace: Any) -> Any:
        """Line strip + numbered spheres for a SpatialTrace (start green, end red)."""
        from geometry_msgs.msg import Point
        from std_msgs.msg import ColorRGBA
        from visualization_msgs.msg import Marker, MarkerArray

        scale = float(self.p['marker_scale_m'])
        cols = [
            ColorRGBA(r=c[0] / 255.0, g=c[1] / 255.0, b=c[2] / 255.0, a=1.0)
            for c in point_colours(len(trace.points))
        ]
        out = MarkerArray()
        clear = Marker()
        clear.header = trace.header
        clear.ns = 'robotracer_trace'
        clear.action = Marker.DELETEALL
        out.markers.append(clear)
        line = Marker()
        line.header = trace.header
        line.ns, line.id, line.type, line.action = 'robotracer_trace', 0, Marker.LINE_STRIP, 0
        line.pose.orientation.w = 1.0
        line.scale.x = scale * 0.4
        line.points = [Point(x=p.x, y=p.y, z=p.z) for p in trace.points]
        line.colors = cols
        line.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        out.markers.append(line)
        for i, (p, c) in enumerate(zip(trace.points, cols, strict=True)):
            s = Marker()
            s.header = trace.header
            s.ns, s.id, s.type, s.action = 'robotracer_trace', 1 + i, Marker.SPHERE, 0
            s.pose.position = Point(x=p.x, y=p.y, z=p.z)
            s.pose.orientation.w = 1.0
            s.scale.x = s.scale.y = s.scale.z = scale
            s.color = c
            out.markers.append(s)
            t = Marker()
            t.header = trace.header
            t.ns, t.id, t.type, t.action = (
                'robotracer_trace_labels',
                1 + i,
                Marker.TEXT_VIEW_FACING,
                0,
            )
            t.pose.position = Point(x=p.x, y=p.y, z=p.z + scale * 1.5)
            t.pose.orientation.w = 1.0
            t.scale.z = scale * 1.5
            t.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
            t.text = str(i + 1)
            out.markers.append(t)
        return out

    def _viz_worker(self) -> None:
        while True:
            item = self._viz_queue.get()
            if item is None:
                self._viz_queue.task_done()
                return
            outcome, trace, header, node_s = item
            try:
                self.publish_visuals(outcome, trace, header)
                r = outcome.result
                self.get_logger().info(
                    f'trace for {outcome.instruction!r}: {len(r.points)} points in '
                    f'{outcome.target_frame} ({r.status_name}'
                    f'{": " + r.note if r.note else ""}); model '
                    f'{outcome.timings["inference"]:.3f} s, node {node_s * 1000:.1f} ms'
                )
            except Exception as exc:  # a visualisation failure must not stop the node
                self.get_logger().error(f'publishing the trace visualisation failed: {exc}')
            finally:
                self._viz_queue.task_done()

    def destroy_node(self) -> None:
        """Stop the visualisation worker, then destroy the node."""
        if getattr(self, '_viz_thread', None) is not None:
            self._viz_queue.put(None)
            self._viz_thread.join(timeout=5.0)
            self._viz_thread = None
        super().destroy_node()

    def publish_visuals(self, outcome: TraceOutcome, trace: Any, header: Any) -> None:
        """Publish the markers and (optionally) the annotated image of a trace."""
        self.markers_pub.publish(self.marker_array(trace))
        if self.p['publish_annotated_image'] and outcome.frame is not None:
            r = outcome.result
            assert r is not None
            drawn = draw_trace(outcome.frame.rgb, r.pixels, label=outcome.instruction)
            f = images.numpy_to_image_fields(drawn, 'rgb8')
            img = self._Image()
            img.header = header
            img.encoding, img.height, img.width, img.step = f.encoding, f.height, f.width, f.step
            img.data = f.data
            self.image_pub.publish(img)


def main(args: list[str] | None = None) -> int:
    """Run the perception node until Ctrl-C / shutdown; returns the exit code."""
    rclpy.init(args=args)
    node: PerceptionNode | None = None
    code = 0
    try:
        node = PerceptionNode()
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ConfigError, BackendError) as exc:
        print(f'perception_node: configuration error: {exc}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
