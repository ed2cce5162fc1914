"""Perception benchmark: prints one JSON object.

1. ``answer_to_trace``: parse + lift (fused, 5x5 sensor window) + filter of a 10-point answer on a
   640x480 16UC1 depth image.
2. Node overhead per GetTrace request, model time excluded: the real PerceptionNode in this
   process, its service callback called directly on a stored 640x480 or 1280x720 RGB-D frame,
   backend robotracer_http (base64 form: PNG encoding of colour + 16-bit depth, base64, JSON, a
   loopback HTTP round trip to a server that answers at once; paths form: the PNGs written to
   the shared folder instead) -> parse/lift/filter -> SpatialTrace published
   and returned. The server's own handling time is subtracted. Markers and the annotated image
   are published by a worker after the reply; their cost is reported separately. The same with
   the replay backend (no request encoding) shows the floor.
3. ``request_encoding``: the robotracer_http request alone (PNG + base64, PNG files, the JSON
   body) at 640x480 and 1280x720, with its goal and the previous version's method measured in
   the same run (``baseline``); ``--only request_encoding`` runs just this part.
4. Image transport: 640x480 rgb8 + 16UC1 + camera_info at 30 Hz from another process into the
   node's subscriptions (reliable vs best effort): delivered fraction, synchronised sets,
   latency (receive time - header stamp). The baseline is a plain rclpy subscriber (one
   single-threaded executor, the three topics) in the same run. The same again with
   ``config/fastdds.xml`` (``FASTRTPS_DEFAULT_PROFILES_FILE``: a shared-memory segment large
   enough for a frame), each in a child process (Fast DDS reads its profile once per process).

Run: ``python bench/perception.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ANSWER_10 = (
    '[(450, 700, 0.9), (470, 660, 0.85), (490, 620, 0.8), (510, 580, 0.75), (530, 540, 0.72), '
    '(560, 500, 0.72), (600, 460, 0.75), (640, 420, 0.8), (680, 380, 0.9), (700, 340, 1.0)]'
)


def stats_ms(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {
        'p50_ms': round(float(np.percentile(a, 50)), 3),
        'p95_ms': round(float(np.percentile(a, 95)), 3),
        'mean_ms': round(float(a.mean()), 3),
        'n': len(samples),
    }


def bench_pipeline(n: int) -> dict:
    from robotracer_ros import images
    from robotracer_ros.filtering import FilterOptions
    from robotracer_ros.lifting import LiftOptions
    from robotracer_ros.parsing import parse_trace
    from robotracer_ros.pipeline import PipelineOptions, answer_to_trace
    from robotracer_ros.testing.camera_publisher import scene

    _, depth_m, K = scene(640, 480)
    depth = images.depth_to_millimetres(depth_m)
    opts = PipelineOptions(lift=LiftOptions('fused'), filter=FilterOptions())
    for _ in range(50):
        answer_to_trace(ANSWER_10, width=640, height=480, K=K, depth=depth, options=opts)
    full, parse = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = answer_to_trace(ANSWER_10, width=640, height=480, K=K, depth=depth, options=opts)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        parse_trace(ANSWER_10)
        parse.append(time.perf_counter() - t0)
    assert len(r.points) == 10
    return {'parse_lift_filter_10pt_640x480': stats_ms(full), 'parse_only_10pt': stats_ms(parse)}


def _frame_msgs(width: int, height: int, stamp_ns: int):
    from sensor_msgs.msg import CameraInfo, Image

    from robotracer_ros import images
    from robotracer_ros.testing.camera_publisher import scene

    rgb, depth_m, K = scene(width, height)
    msgs = []
    for arr, enc in ((rgb, 'rgb8'), (images.depth_to_millimetres(depth_m), '16UC1')):
        f = images.numpy_to_image_fields(arr, enc)
        m = Image(encoding=f.encoding, height=f.height, width=f.width, step=f.step)
        m.data = f.data
        msgs.append(m)
    info = CameraInfo(width=width, height=height)
    info.k = K.reshape(-1).tolist()
    for m in (*msgs, info):
        m.header.frame_id = 'camera_color_optical_frame'
        m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return msgs[0], msgs[1], info


def bench_node_overhead(n: int) -> dict:
    import rclpy
    from rclpy.parameter import Parameter

    from robotracer_msgs.srv import GetTrace
    from robotracer_ros.backends.robotracer_http import RoboTracerHttpBackend
    from robotracer_ros.nodes.perception_node import PerceptionNode
    from robotracer_ros.testing.model_server import ModelServer, Reply
    from robotracer_ros.trace_service import TraceRequest

    out: dict = {}
    rclpy.init()
    try:
        with ModelServer(lambda req: Reply(ANSWER_10), decode=False) as server:
            rec = pathlib.Path(tempfile.mkdtemp()) / 'answers.jsonl'
            rec.write_text(json.dumps({'answer': ANSWER_10, 'elapsed_s': 0.0}) + '\n')
            for label, backend, transport in (
                ('robotracer_http_base64', 'robotracer_http', 'base64'),
                ('robotracer_http_paths', 'robotracer_http', 'paths'),
                ('replay', 'replay', 'base64'),
            ):
                for width, height in ((640, 480), (1280, 720)):
                    node = PerceptionNode(
                        parameter_overrides=[
                            Parameter('backend', value=backend),
                            Parameter('transport', value=transport),
                            Parameter('model_url', value=server.url),
                            Parameter('replay_path', value=str(rec)),
                            Parameter('max_frame_age_s', value=0.0),
                        ]
                    )
                    c, d, i = _frame_msgs(width, height, node.get_clock().now().nanoseconds)
                    for name, m in (('color', c), ('depth', d), ('info', i)):
                        node._on_msg(name, m)
                    req = GetTrace.Request(instruction='put the red box on the wall')
                    total, model, convert, encode, viz = [], [], [], [], []
                    for k in range(n + 10):
                        server.requests.clear()
                        server.server_time_s.clear()
                        t0 = time.perf_counter()
                        resp = node._on_get_trace(req, GetTrace.Response())
                        dt = time.perf_counter() - t0
                        assert resp.success, resp.error_msg
                        srv = sum(server.server_time_s)
                        node._viz_queue.join()  # markers + image are published after the reply
                        t1 = time.perf_counter()
                        frame, _, header = node.current_frame()
                        t2 = time.perf_counter()
                        if backend == 'robotracer_http':
                            _, files = RoboTracerHttpBackend.build_payload(
                                node.backend, frame.rgb, frame.depth, frame.K, 'x'
                            )
                            node.backend._cleanup(files)
                        t3 = time.perf_counter()
                        outcome = node.service.handle(TraceRequest('x'), frame)
                        trace = node.trace_message(outcome, header)
                        t4 = time.perf_counter()
                        node.publish_visuals(outcome, trace, header)
                        t5 = time.perf_counter()
                        if k >= 10:
                            total.append(dt - srv)
                            model.append(srv)
                            convert.append(t2 - t1)
                            encode.append(t3 - t2)
                            viz.append(t5 - t4)
                    key = f'{label}_{width}x{height}'
                    out[key] = {
                        'node_overhead': stats_ms(total),
                        'of_which_image_conversion': stats_ms(convert),
                        'of_which_request_encoding': stats_ms(encode),
                        'server_handling_excluded': stats_ms(model),
                        'after_reply_markers_and_annotated_image': stats_ms(viz),
                    }
                    node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return out


REQUEST_ENCODING_GOAL = 'p95 <= 2 ms at 640x480 (idle), each form'


def _old_png_stored(arr: np.ndarray) -> bytes:
    """The request encoder's PNG writer before this version (baseline, same run)."""
    import struct
    import zlib

    from robotracer_ros.images import _png_chunk

    h, w = arr.shape[:2]
    if arr.dtype == np.uint16:
        rows = arr.astype('>u2').reshape(h, -1).view(np.uint8)
        depth = 16
    else:
        rows = arr.reshape(h, -1)
        depth = 8
    raw = np.empty((h, rows.shape[1] + 1), np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = rows
    header = struct.pack('>IIBBBBB', w, h, depth, 2 if arr.ndim == 3 else 0, 0, 0, 0)
    return (
        b'\x89PNG\r\n\x1a\n'
        + _png_chunk(b'IHDR', header)
        + _png_chunk(b'IDAT', zlib.compress(raw.data, 0))
        + _png_chunk(b'IEND', b'')
    )


def _old_encode_json(payload: dict) -> bytes:
    """The body encoder before this version: big strings checked with str.isprintable."""
    import json
    import uuid

    big: list[str] = []
    tag = uuid.uuid4().hex

    def swap(v):
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        if (
            isinstance(v, str)
            and len(v) > 4096
            and v.isascii()
            and v.isprintable()
            and '"' not in v
            and '\\' not in v
        ):
            big.append(v)
            return f'@@{tag}-{len(big) - 1}@@'
        return v

    text = json.dumps(swap(payload), allow_nan=False)
    parts: list[bytes] = []
    rest = text
    for i, value in enumerate(big):
        head, rest = rest.split(f'@@{tag}-{i}@@', 1)
        parts += [head.encode('utf-8'), value.encode('ascii')]
    parts.append(rest.encode('utf-8'))
    return b''.join(parts)


def bench_request_encoding(n: int) -> dict:
    """Request encoding of a stored RGB-D frame (rgb8 + 16-bit mm depth), no ROS, no HTTP.

    ``build_payload`` per form (base64: PNG + base64; paths: PNG files written to the shared
    folder) and the request body (JSON) of the base64 form, each next to the previous
    version's method measured in the same run (``baseline``), interleaved sample by sample so
    that load from other work hits both alike.
    """
    import shutil

    shared = tempfile.mkdtemp(prefix='robotracer_bench_')
    out: dict = {'goal': REQUEST_ENCODING_GOAL}
    try:
        for width, height in ((640, 480), (1280, 720)):
            out[f'{width}x{height}'] = _request_encoding_at(width, height, n, shared)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    return out


def _request_encoding_at(width: int, height: int, n: int, shared: str) -> dict:
    import base64
    import uuid

    from robotracer_ros import images
    from robotracer_ros.backends._http import encode_json
    from robotracer_ros.backends.robotracer_http import RoboTracerHttpBackend
    from robotracer_ros.prompts import robotracer_prompt
    from robotracer_ros.testing.camera_publisher import scene

    rgb, depth_m, K = scene(width, height)
    depth = images.depth_to_millimetres(depth_m)
    b64 = RoboTracerHttpBackend()
    paths = RoboTracerHttpBackend(transport='paths', inputs='rgbd', shared_dir=shared)

    def old_base64():
        prompt = robotracer_prompt('x')
        return {
            'image_url': [base64.b64encode(_old_png_stored(rgb)).decode('utf-8')],
            'depth_url': [base64.b64encode(_old_png_stored(depth)).decode('utf-8')],
            'enable_depth': 1,
            'text': prompt,
        }

    def old_paths():
        robotracer_prompt('x')
        stem = os.path.join(shared, f'robotracer_{uuid.uuid4().hex}')
        files = []
        for suffix, arr in (('_rgb.png', rgb), ('_depth.png', depth)):
            with open(stem + suffix, 'wb') as f:
                f.write(_old_png_stored(arr))
            files.append(stem + suffix)
        for path in files:
            os.remove(path)

    def new_paths():
        _, files = paths.build_payload(rgb, depth, K, 'x')
        paths._cleanup(files)

    payload, _ = b64.build_payload(rgb, depth, K, 'x')
    old_payload = old_base64()
    for key in ('image_url', 'depth_url'):  # the same pixels reach the server
        new_px = images.decode_image(base64.b64decode(payload[key][0]))
        old_px = images.decode_image(base64.b64decode(old_payload[key][0]))
        assert np.array_equal(new_px, old_px)
    assert encode_json(payload) == _old_encode_json(payload)
    cases = {
        'base64_build_payload': (lambda: b64.build_payload(rgb, depth, K, 'x'), old_base64),
        'paths_build_payload': (new_paths, old_paths),
        'base64_body_json': (
            lambda: encode_json(payload),
            lambda: _old_encode_json(old_payload),
        ),
    }
    res: dict = {}
    for name, (new, old) in cases.items():
        for _ in range(5):
            new(), old()
        t_new, t_old = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            new()
            t1 = time.perf_counter()
            old()
            t_old.append(time.perf_counter() - t1)
            t_new.append(t1 - t0)
        res[name] = {
            'now': stats_ms(t_new),
            'baseline': stats_ms(t_old),
            'p95_ratio': round(float(np.percentile(t_old, 95) / np.percentile(t_new, 95)), 2),
        }
    res['bytes'] = {
        'rgb_png': len(images.encode_png_buffer(rgb)),
        'depth_png': len(images.encode_png_buffer(depth)),
        'base64_body': len(encode_json(payload)),
        'rgb_png_level1': len(images.encode_png(rgb, compression=1)),
        'depth_png_level1': len(images.encode_png(depth, compression=1)),
    }
    return res


def bench_transport(qos: str, seconds: float, rate: float = 30.0) -> dict:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from robotracer_ros.nodes.perception_node import PerceptionNode

    rclpy.init()
    recv: dict[str, list[tuple[float, float]]] = {'color': [], 'depth': [], 'info': []}
    try:
        node = PerceptionNode(
            parameter_overrides=[
                Parameter('image_reliability', value=qos),
                Parameter('backend', value='robotracer_http'),
            ]
        )
        original = node._on_msg

        def record(stream: str, msg) -> None:
            now = time.time()
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            recv[stream].append((now, stamp))
            original(stream, msg)

        node._on_msg = record
        published = _spin_during_camera(
            node, MultiThreadedExecutor(num_threads=3), rate, qos, seconds
        )
        matched = node.sync.matched
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    res: dict = {'published_sets': published, 'synchronised_sets': matched}
    for stream, items in recv.items():
        lat = [r - s for r, s in items]
        res[stream] = {
            'delivered_fraction': round(len(items) / published, 4),
            'latency': stats_ms(lat) if lat else None,
        }
        if len(items) > 1:
            span = items[-1][0] - items[0][0]
            res[stream]['rate_hz'] = round((len(items) - 1) / span, 2) if span > 0 else None
    res['synchronised_fraction'] = round(matched / published, 4)
    return res


def bench_plain_transport(qos: str, seconds: float, rate: float = 30.0) -> dict:
    """The baseline: a plain rclpy subscriber to the three camera topics, nothing else."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    recv: dict[str, list[float]] = {'color': [], 'depth': [], 'info': []}
    try:
        node = rclpy.create_node('plain_camera_subscriber')
        profile = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=5,
            reliability=ReliabilityPolicy.RELIABLE
            if qos == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT,
        )
        ns = '/camera/camera'
        topics = {
            'color': (Image, f'{ns}/color/image_raw'),
            'depth': (Image, f'{ns}/aligned_depth_to_color/image_raw'),
            'info': (CameraInfo, f'{ns}/color/camera_info'),
        }
        for stream, (kind, topic) in topics.items():

            def on_msg(msg, stream=stream) -> None:
                stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                recv[stream].append(time.time() - stamp)

            node.create_subscription(kind, topic, on_msg, profile)
        published = _spin_during_camera(node, SingleThreadedExecutor(), rate, qos, seconds)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    res: dict = {'subscriber': 'plain rclpy, single-threaded', 'published_sets': published}
    for stream, lat in recv.items():
        res[stream] = {
            'delivered_fraction': round(len(lat) / published, 4),
            'latency': stats_ms(lat) if lat else None,
        }
    return res


def _spin_during_camera(node, executor, rate: float, qos: str, seconds: float) -> int:
    """Spin ``node`` while the camera publisher runs for ``seconds``; the sets it published."""
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    published = _publish_camera(rate, int(seconds * rate), qos, seconds)
    time.sleep(1.0)  # the last frames in flight
    executor.shutdown()
    return published


def _publish_camera(rate: float, count: int, qos: str, seconds: float) -> int:
    """Run the camera publisher in its own process; the sets it published."""
    pub = subprocess.run(
        [
            sys.executable,
            '-m',
            'robotracer_ros.testing.camera_publisher',
            '--rate',
            str(rate),
            '--count',
            str(count),
            '--qos',
            qos,
            '--wait-subscribers',
            '10',
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env=os.environ.copy(),
    )
    return int(json.loads(pub.stdout.strip().splitlines()[-1])['published'])


def _transport_child(subscriber: str, qos: str, seconds: float, profile: str | None) -> dict:
    """Run one transport measurement in a child process (its own Fast DDS profile)."""
    env = os.environ.copy()
    if profile:
        env['FASTRTPS_DEFAULT_PROFILES_FILE'] = profile
    out = subprocess.run(
        [sys.executable, __file__, '--transport-child', subscriber, qos, str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        env=env,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith('{')]
    if not lines:
        return {'error': (out.stderr or out.stdout)[-500:]}
    return json.loads(lines[-1])


def bench_transports(seconds: float) -> dict:
    """Every transport variant, each in its own process (see the module docstring)."""
    profile = str(pathlib.Path(__file__).resolve().parents[1] / 'config' / 'fastdds.xml')
    out: dict = {}
    for key, prof in (
        ('transport_640x480_rgbd_30hz', None),
        ('transport_640x480_rgbd_30hz_fastdds_profile', profile),
    ):
        out[key] = {
            'fastdds_profile': 'config/fastdds.xml' if prof else 'Fast DDS defaults',
            'reliable': _transport_child('node', 'reliable', seconds, prof),
            'best_effort': _transport_child('node', 'best_effort', seconds, prof),
            'baseline_plain_subscriber_reliable': _transport_child(
                'plain', 'reliable', seconds, prof
            ),
        }
        node = out[key]['reliable'].get('color', {}).get('latency') or {}
        plain = out[key]['baseline_plain_subscriber_reliable'].get('color', {}).get('latency')
        if node and plain and plain.get('p95_ms'):
            out[key]['color_p95_ratio_node_to_plain'] = round(node['p95_ms'] / plain['p95_ms'], 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='fewer iterations (smoke run)')
    ap.add_argument(
        '--only',
        choices=['request_encoding', 'transport'],
        help='run one part alone (request_encoding: no ROS, ~1 min; transport: ~2 min)',
    )
    ap.add_argument('--transport-child', nargs=3, metavar=('SUBSCRIBER', 'QOS', 'SECONDS'))
    args = ap.parse_args()
    if args.transport_child:
        who, qos, secs_s = args.transport_child
        os.environ['ROS_DOMAIN_ID'] = str(101 + os.getpid() % 100)
        os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        run = bench_transport if who == 'node' else bench_plain_transport
        print(json.dumps(run(qos, float(secs_s))))
        return 0
    # a private DDS domain: a running simulator or camera must not feed the benchmark
    os.environ['ROS_DOMAIN_ID'] = str(101 + os.getpid() % 100)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    n_pipe, n_node, secs = (200, 20, 3.0) if args.quick else (2000, 100, 10.0)
    n_enc = 50 if args.quick else 150
    machine = {'cpus': os.cpu_count(), 'loadavg_1min_at_start': os.getloadavg()[0]}
    if args.only == 'transport':
        out = {'machine': machine, **bench_transports(secs)}
        out['machine']['loadavg_1min_at_end'] = os.getloadavg()[0]
        print(json.dumps(out, indent=1))
        return 0
    if args.only == 'request_encoding':
        out = {'machine': machine, 'request_encoding': bench_request_encoding(n_enc)}
        out['machine']['loadavg_1min_at_end'] = os.getloadavg()[0]
        print(json.dumps(out, indent=1))
        return 0
    out = {
        'machine': machine,
        'pipeline': bench_pipeline(n_pipe),
        'request_encoding': bench_request_encoding(n_enc),
        'node_request': bench_node_overhead(n_node),
        **bench_transports(secs),
    }
    out['machine']['loadavg_1min_at_end'] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
