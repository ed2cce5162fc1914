"""Perception node: RGB-D topics + a model backend -> ``/robotracer/get_trace`` and trace topics.

Design notes: docs/design-notes.md (robotracer_ros.nodes.perception_node).
"""

from __future__ import annotations

from functools import partial
import queue
import sys
import threading
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from robotracer_ros import images
from robotracer_ros.annotate import draw_trace
from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.lifting import (
    MIN_VALID_DEPTH_FRACTION,
    check_depth_registration,
    depth_coverage,
    validate_intrinsics,
)
from robotracer_ros.markers import trace_markers
from robotracer_ros.parameters import ConfigError, declare_all
from robotracer_ros.perception_config import (
    PARAMETERS,
    PARAMETERS_BY_NAME,
    backend_options,
    check_parameters,
    pipeline_options,
    static_transform,
)
from robotracer_ros.stamps import seconds
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
from robotracer_ros.transforms import TfThenParameter, transform_from_translation_quaternion

try:  # tf2_ros exists on a full ROS install only (not on PyPI)
    import tf2_ros  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the install
    tf2_ros = None


# what each synchronised stream is called in messages
STREAM_LABELS = {'color': 'colour image', 'depth': 'depth image', 'info': 'camera_info'}


class PerceptionNode(Node):
    """The perception node (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('perception_node', **kwargs)
        self._viz_thread: threading.Thread | None = None
        self._images_thread: threading.Thread | None = None
        p = declare_all(self, PARAMETERS)
        check_parameters(p)
        self.p = p
        self.backend = make_backend(p['backend'], **backend_options(p))
        self.service = TraceService(
            self.backend,
            options=pipeline_options(p, p['depth_source']),
            default_target_frame=p['target_frame'],
            max_frame_age_s=p['max_frame_age_s'],
            lookup_transform=self._lookup_transform,
            clock=lambda: self.get_clock().now().nanoseconds * 1e-9,
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._static = static_transform(p)
        self._tf_buffer = None
        if p['use_tf2'] and tf2_ros is not None:  # pragma: no cover - full ROS install only
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
        # tf2 when it has the transform, else the static_transform parameter (logged)
        self._transforms = TfThenParameter(
            self._tf2_lookup if self._tf_buffer is not None else None,
            self._parameter_lookup,
            lambda m: self.get_logger().info(m),
        )

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
        self._new_frame = threading.Condition(self._lock)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=p['image_depth'],
            reliability=ReliabilityPolicy.RELIABLE
            if p['image_reliability'] == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT,
        )
        self.images_group = MutuallyExclusiveCallbackGroup()
        self.service_group = MutuallyExclusiveCallbackGroup()
        # The camera topics are taken by a node of their own, spun by a single-threaded
        # executor in its own thread: under the node's multi-threaded executor, 30 Hz RGB-D
        # frames were late and, with reliable QoS, some were lost (bench/perception.py
        # --only transport measures both).
        # (no global arguments: a launch's ``__node`` remap would give it this node's name;
        # the topics are resolved with this node's remaps below)
        self._images_node = rclpy.create_node(
            f'{self.get_name()}_images',
            namespace=self.get_namespace(),
            context=self.context,
            use_global_arguments=False,
            start_parameter_services=False,
        )
        for stream, kind, topic in (
            ('color', Image, p['color_topic']),
            ('info', CameraInfo, p['camera_info_topic']),
            ('depth', Image, p['depth_topic']),
        ):
            if stream == 'depth' and not p['use_depth']:
                continue
            self._images_node.create_subscription(
                kind, self.resolve_topic_name(topic), partial(self._take, stream), qos
            )
        self._images_executor = SingleThreadedExecutor(context=self.context)
        self._images_executor.add_node(self._images_node)
        self._images_thread = threading.Thread(
            target=self._spin_images, name='perception_images', daemon=True
        )
        self._images_thread.start()
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
        self._viz_thread = threading.Thread(
            target=self._viz_worker, name='perception_viz', daemon=True
        )
        self._viz_thread.start()
        self.create_timer(5.0, self._warn_if_waiting, callback_group=self.images_group)
        static_mode = (
            f'static {p["static_transform.parent_frame"]} <- camera'
            if p['static_transform.parent_frame']
            else 'camera frame only'
        )
        tf_mode = f'tf2, else {static_mode}' if self._tf_buffer is not None else static_mode
        form = ''
        if p['backend'] == 'robotracer_http':
            form = f' ({self.backend.transport} form, inputs {self.backend.inputs})'
        self.get_logger().info(
            f'ready: backend {self.backend.model_id}'
            f'{" at " + p["model_url"] if p["backend"] in ("robotracer_http", "openai") else ""}'
            f'{form}'
            f'; colour {self.resolve_topic_name(p["color_topic"])}, depth '
            f'{self.resolve_topic_name(p["depth_topic"]) if p["use_depth"] else "(off)"}, '
            f'info {self.resolve_topic_name(p["camera_info_topic"])} ({p["image_reliability"]}, '
            f'depth {p["image_depth"]}); target frame {p["target_frame"] or "(camera)"} via '
            f'{tf_mode}; service {p["service_name"]}'
        )

    # ---------------------------------------------------------------- configuration

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for prm in params:
            why = (
                PARAMETERS_BY_NAME[prm.name].check(prm.value)
                if prm.name in PARAMETERS_BY_NAME
                else ''
            )
            if why:
                return SetParametersResult(successful=False, reason=why)
        for prm in params:
            if prm.name == 'max_frame_age_s':
                self.service.max_frame_age_s = float(prm.value)
            elif prm.name == 'depth_source':
                self.p['depth_source'] = prm.value
                self.service.options = pipeline_options(self.p, prm.value)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- transforms

    def _lookup_transform(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        return self._transforms(target, source, stamp_s)

    def _tf2_lookup(
        self, target: str, source: str, stamp_s: float
    ) -> np.ndarray:  # pragma: no cover - full ROS install only
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

    def _parameter_lookup(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        static = StaticTransforms()
        if self._static is not None:
            parent, child, T = self._static
            static.add(parent, child or source, T)
        return static(target, source, stamp_s)

    # ---------------------------------------------------------------- frames

    def _spin_images(self) -> None:
        try:
            self._images_executor.spin()
        except ExternalShutdownException:
            pass

    def _take(self, stream: str, msg: Any) -> None:
        self._on_msg(stream, msg)

    def _on_msg(self, stream: str, msg: Any) -> None:
        matched = self.sync.add(stream, seconds(msg.header.stamp), msg)
        if matched is not None:
            with self._lock:
                self._latest = matched
                self._new_frame.notify_all()

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
                'topic names and that image_reliability='
                f'{self.p["image_reliability"]} matches the publisher'
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

    def _latestseconds(self) -> float | None:
        """Stamp of the latest synchronised set's colour image (call with the lock held)."""
        return None if self._latest is None else self._latest['color'][0]

    def _wait_for_frame_after(self, not_before: float) -> bool:
        """Wait up to ``fresh_frame_timeout_s`` for a synchronised set taken at/after a stamp."""
        deadline = time.monotonic() + self.p['fresh_frame_timeout_s']
        with self._new_frame:
            while (stamp := self._latestseconds()) is None or stamp < not_before:
                left = deadline - time.monotonic()
                if left <= 0 or not rclpy.ok(context=self.context):
                    return False
                self._new_frame.wait(min(left, 0.1))
        return True

    def _answer_stale_wait(self, request: Any, response: Any, not_before: float) -> Any:
        with self._lock:
            stamp = self._latestseconds()
        latest = 'no frame yet' if stamp is None else f'the latest was taken at {stamp:.3f} s'
        why = self._stream_diagnosis()
        response.success = False
        response.error_code = ERROR_STALE_FRAME
        response.error_msg = (
            f'no frame taken at or after not_before = {not_before:.3f} s arrived within '
            f'fresh_frame_timeout_s = {self.p["fresh_frame_timeout_s"]:g} s ({latest})'
            + (f' -- {why}' if why else '')
        )
        self.get_logger().warn(
            f'get_trace {request.instruction!r} failed (error {ERROR_STALE_FRAME}): '
            f'{response.error_msg}'
        )
        return response

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
        frame = Frame(rgb, depth, scale, K, seconds(color.header.stamp), camera_frame)
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
        not_before = seconds(request.not_before)
        if not_before and not self._wait_for_frame_after(not_before):
            return self._answer_stale_wait(request, response, not_before)
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
        response.bad_point = outcome.bad_point
        response.bad_point_depth_m = outcome.bad_point_depth_m
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
        """Stop the camera executor and the visualisation worker, then destroy the node."""
        if self._images_thread is not None:
            self._images_executor.shutdown(timeout_sec=2.0)
            self._images_thread.join(timeout=5.0)
            self._images_thread = None
            self._images_node.destroy_node()
        if self._viz_thread is not None:
            self._viz_queue.put(None)
            self._viz_thread.join(timeout=5.0)
            self._viz_thread = None
        super().destroy_node()

    def publish_visuals(self, outcome: TraceOutcome, trace: Any, header: Any) -> None:
        """Publish the markers and (optionally) the annotated image of a trace."""
        self.markers_pub.publish(trace_markers(trace, float(self.p['marker_scale_m'])))
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
