"""Benchmark of the UR5 simulator and its oracle; prints one JSON object.

Figures:
- ``render``: one-pass 640x480 RGB + z-depth render time (core, no ROS), and the same plus
  the conversion to sensor_msgs/Image (rgb8 + 16UC1) -> the highest frame rate it allows.
- ``publish_across_processes``: the ur5_world node started in its own process with a requested
  camera rate, received by a reliable subscriber in this process over Fast DDS: delivered
  colour/depth rates and stamp-to-receipt latency.
- ``physics``: real-time factor of the physics alone (arm following a trajectory, objects
  resting), i.e. simulated seconds per wall second at 2 ms steps.
- ``oracle``: answer time with latency 0: in process, and over HTTP in both request forms.

Usage: ``python bench/sim.py [--seconds S] [--rate HZ]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('ROS_DOMAIN_ID', str(101 + os.getpid() % 100))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from robotracer_sim.oracle import Oracle, OracleConfig, OracleServer  # noqa: E402
from robotracer_sim.ur5.world import Ur5World  # noqa: E402

PROMPT = (
    'Point the 3D object-centric visual trace for the task "{}". Your answer should be '
    'formatted as a list of tuples, i.e., [(x1, y1, d1), (x2, y2, d2), ...], where each tuple '
    'contains the x and y coordinates of the point, and d is the depth of the point.'
)


def stats_ms(samples: list[float]) -> dict:
    a = np.asarray(samples) * 1000.0
    return {
        'mean_ms': round(float(a.mean()), 2),
        'p50_ms': round(float(np.percentile(a, 50)), 2),
        'p95_ms': round(float(np.percentile(a, 95)), 2),
        'n': len(samples),
    }


def bench_render(world: Ur5World, n: int = 40) -> dict:
    from robotracer_sim.nodes.ur5_world_node import depth_to_mm, image_msg

    world.render_rgbd()  # warm-up (GL context, textures)
    render, full = [], []
    stamp = _zero_stamp()
    for _ in range(n):
        t0 = time.perf_counter()
        rgb, depth = world.render_rgbd()
        t1 = time.perf_counter()
        image_msg(rgb, 'rgb8', 'cam', stamp)
        image_msg(depth_to_mm(depth), '16UC1', 'cam', stamp)
        t2 = time.perf_counter()
        render.append(t1 - t0)
        full.append(t2 - t0)
    r, f = stats_ms(render), stats_ms(full)
    return {
        'size': f'{world.width}x{world.height}',
        'render_rgbd': r,
        'render_plus_image_msgs': f,
        'max_rate_hz': round(1000.0 / f['mean_ms'], 1),
    }


def _zero_stamp():
    from builtin_interfaces.msg import Time

    return Time()


def bench_physics(world: Ur5World, sim_seconds: float = 5.0) -> dict:
    q0 = world.joint_positions()
    world.set_trajectory(world.joint_names, [sim_seconds / 2, sim_seconds], [q0 + 0.3, q0])
    t0 = time.perf_counter()
    world.step(sim_seconds)
    wall = time.perf_counter() - t0
    steps = int(round(sim_seconds / world.timestep))
    return {
        'timestep_s': world.timestep,
        'sim_seconds': sim_seconds,
        'wall_seconds': round(wall, 3),
        'real_time_factor': round(sim_seconds / wall, 1),
        'step_us': round(wall / steps * 1e6, 1),
    }


def bench_oracle(world: Ur5World, n: int = 30) -> dict:
    oracle = Oracle(world.snapshot, OracleConfig(latency=0.0))
    prompt = PROMPT.format('put the red cube on the plate')
    oracle.answer(prompt, 640, 480, world.k)
    inproc = []
    for _ in range(n):
        t0 = time.perf_counter()
        oracle.answer(prompt, 640, 480, world.k)
        inproc.append(time.perf_counter() - t0)
    rgb, depth = world.render_rgbd()
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix='robotracer_bench_'))
    Image.fromarray(rgb).save(folder / 'rgb.png')
    Image.fromarray(np.clip(depth * 1000, 0, 65535).astype(np.uint16)).save(folder / 'd.png')
    paths_body = json.dumps(
        {
            'text': prompt,
            'image_paths': [str(folder / 'rgb.png')],
            'depth_z_paths': [str(folder / 'd.png')],
            'intrinsics': world.k.tolist(),
            'enable_spatial': 1,
        }
    ).encode()

    def url(p: Path) -> str:
        return 'data:image/png;base64,' + base64.b64encode(p.read_bytes()).decode()

    b64_body = json.dumps(
        {
            'text': prompt,
            'image_url': [url(folder / 'rgb.png')],
            'depth_url': [url(folder / 'd.png')],
            'intrinsics': world.k.tolist(),
            'enable_depth': 1,
        }
    ).encode()
    out = {'in_process': stats_ms(inproc)}
    with OracleServer(oracle, port=0) as server:
        for name, body in (('http_paths', paths_body), ('http_base64', b64_body)):
            samples = []
            for _ in range(n):
                req = urllib.request.Request(
                    server.url + '/query',
                    data=body,
                    method='POST',
                    headers={'Content-Type': 'application/json'},
                )
                t0 = time.perf_counter()
                with urllib.request.urlopen(req, timeout=10) as r:
                    assert json.loads(r.read())['result'] == 1
                samples.append(time.perf_counter() - t0)
            out[name] = stats_ms(samples)
    return out


def bench_publish(seconds: float, rate: float) -> dict:
    """Start ur5_world in its own process and receive its images here over DDS."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    proc = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'robotracer_sim.nodes.ur5_world_node',
            '--ros-args',
            '-p',
            f'rate:={float(rate)}',
            '-p',
            'oracle_enabled:=false',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if 'ready' not in line:
            return {'error': f'ur5_world did not start: {line!r}'}
        ctx = rclpy.Context()
        rclpy.init(context=ctx)
        node = rclpy.create_node('sim_bench', context=ctx)
        got: dict[str, list[tuple[float, float]]] = {'color': [], 'depth': []}
        lock = threading.Lock()

        def cb(kind: str):
            def f(msg: Image) -> None:
                now = time.time()
                st = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                with lock:
                    got[kind].append((now, now - st))

            return f

        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Image, '/camera/camera/color/image_raw', cb('color'), qos)
        node.create_subscription(
            Image, '/camera/camera/aligned_depth_to_color/image_raw', cb('depth'), qos
        )
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        t_end = time.monotonic() + 2.0  # discovery + warm-up
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.05)
        with lock:
            for v in got.values():
                v.clear()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.05)
        out: dict = {'requested_rate_hz': rate, 'seconds': seconds, 'qos': 'reliable'}
        for kind, samples in got.items():
            lat = [s[1] for s in samples]
            out[kind] = {
                'delivered_rate_hz': round(len(samples) / seconds, 2),
                'latency': stats_ms(lat) if lat else None,
            }
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        return out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=float, default=6.0, help='DDS measurement window')
    ap.add_argument('--rate', type=float, default=15.0, help='camera rate asked of the node')
    args = ap.parse_args()
    world = Ur5World()
    world.step(0.2)
    result = {
        'benchmark': 'sim',
        'machine': {'cpus': os.cpu_count(), 'mujoco_gl': os.environ.get('MUJOCO_GL')},
        'render': bench_render(world),
        'physics': bench_physics(world),
        'oracle': bench_oracle(world),
        'publish_across_processes': bench_publish(args.seconds, args.rate),
    }
    world.close()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
