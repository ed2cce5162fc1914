"""A synthetic RGB-D camera in its own process (for the perception DDS tests and benchmark).

Design notes: docs/design-notes.md (robotracer_ros.testing.camera_publisher).
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import time

import numpy as np

WALL_M = 1.2
BOX_M = 0.9
BOX = (0.55, 0.85, 0.30, 0.70)  # row0, row1, col0, col1 as fractions


def scene(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour (RGB), depth (metres) and K of the synthetic scene."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    rgb[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    depth = np.full((height, width), WALL_M, np.float32)
    r0, r1, c0, c1 = (
        int(BOX[0] * height),
        int(BOX[1] * height),
        int(BOX[2] * width),
        int(BOX[3] * width),
    )
    depth[r0:r1, c0:c1] = BOX_M
    rgb[r0:r1, c0:c1] = (200, 30, 30)
    f = 600.0 * width / 640.0
    K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    return rgb, depth, K


class Faults:
    """The fault state a ``--control`` command sets (see the module docstring)."""

    STREAMS = ('color', 'depth', 'info')

    def __init__(self) -> None:
        self.stopped: set[str] = set()
        self.intrinsics: dict[str, float] = {}
        self.depth = 'ok'
        self.depth_size: tuple[int, int] | None = None
        self.offset: dict[str, float] = {}
        self.frame_id: str | None = None

    def apply(self, line: str) -> None:
        """Apply one command.

        Raises:
            ValueError: unknown command or bad argument.
        """
        words = line.split()
        if not words:
            raise ValueError('empty command')
        cmd, args = words[0], words[1:]
        if cmd == 'reset' and not args:
            self.__init__()
        elif cmd in ('stop', 'start') and len(args) == 1 and args[0] in self.STREAMS:
            (self.stopped.add if cmd == 'stop' else self.stopped.discard)(args[0])
        elif cmd == 'intrinsics' and args:
            for a in args:
                key, _, value = a.partition('=')
                if key not in ('fx', 'fy', 'cx', 'cy'):
                    raise ValueError(f'unknown intrinsic {key!r}')
                self.intrinsics[key] = float(value)
        elif cmd == 'depth' and len(args) == 1 and args[0] in ('ok', 'zeros', 'nan'):
            self.depth = args[0]
        elif cmd == 'depth_size' and len(args) == 1:
            w, _, h = args[0].partition('x')
            self.depth_size = (int(w), int(h))
        elif cmd == 'offset' and len(args) == 2 and args[0] in self.STREAMS:
            self.offset[args[0]] = float(args[1])
        elif cmd == 'frame_id' and len(args) == 1:
            self.frame_id = args[0]
        else:
            raise ValueError('unknown command')


def _read_commands(out: queue.Queue) -> None:
    for line in sys.stdin:
        if line.strip():
            out.put(line.strip())


def main() -> int:
    """Publish the scene until SIGINT/SIGTERM or ``--count`` sets; returns the exit code."""
    ap = argparse.ArgumentParser()
    ap.add_argument('--rate', type=float, default=15.0)
    ap.add_argument('--count', type=int, default=0, help='stop after N sets (0 = run)')
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--no-info', action='store_true')
    ap.add_argument('--no-depth', action='store_true')
    ap.add_argument('--stamp-offset', type=float, default=0.0, help='added to stamps, s')
    ap.add_argument('--qos', choices=['reliable', 'best_effort'], default='reliable')
    ap.add_argument('--encoding', choices=['rgb8', 'bgr8'], default='rgb8')
    ap.add_argument('--depth-encoding', choices=['16UC1', '32FC1'], default='16UC1')
    ap.add_argument('--frame-id', default='camera_color_optical_frame')
    ap.add_argument('--ns', default='/camera/camera')
    ap.add_argument(
        '--control', action='store_true', help='read fault commands from stdin (see above)'
    )
    ap.add_argument(
        '--wait-subscribers',
        type=float,
        default=0.0,
        help='wait up to this long for a subscriber on every topic first, s',
    )
    args = ap.parse_args()

    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from robotracer_ros import images

    rclpy.init()
    node = rclpy.create_node('fake_rgbd_camera')
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=5,
        reliability=ReliabilityPolicy.RELIABLE
        if args.qos == 'reliable'
        else ReliabilityPolicy.BEST_EFFORT,
    )
    pub_c = node.create_publisher(Image, f'{args.ns}/color/image_raw', qos)
    pub_d = node.create_publisher(Image, f'{args.ns}/aligned_depth_to_color/image_raw', qos)
    pub_i = node.create_publisher(CameraInfo, f'{args.ns}/color/camera_info', qos)
    rgb, depth_m, K = scene(args.width, args.height)
    colour = rgb[..., ::-1].copy() if args.encoding == 'bgr8' else rgb
    cf = images.numpy_to_image_fields(colour, args.encoding)
    faults = Faults()  # --no-depth/--no-info are stopped streams that ``start`` resumes
    faults.stopped.update(
        n for n, off in (('depth', args.no_depth), ('info', args.no_info)) if off
    )

    def depth_fields() -> images.ImageFields:
        if faults.depth_size is None:
            d = depth_m
        else:
            d = scene(*faults.depth_size)[1]
        if faults.depth == 'zeros':
            d = np.zeros_like(d)
        elif faults.depth == 'nan':
            d = np.full_like(d, np.nan)
        if args.depth_encoding == '16UC1':
            return images.numpy_to_image_fields(images.depth_to_millimetres(d), '16UC1')
        return images.numpy_to_image_fields(d.astype(np.float32), '32FC1')

    def image(fields: images.ImageFields) -> Image:
        m = Image()
        m.header.frame_id = args.frame_id
        m.encoding, m.height, m.width, m.step = (
            fields.encoding,
            fields.height,
            fields.width,
            fields.step,
        )
        m.data = fields.data
        return m

    def camera_info() -> CameraInfo:
        k = K.copy()
        for key, (r, c) in (('fx', (0, 0)), ('fy', (1, 1)), ('cx', (0, 2)), ('cy', (1, 2))):
            if key in faults.intrinsics:
                k[r, c] = faults.intrinsics[key]
        info = CameraInfo()
        info.header.frame_id = args.frame_id
        info.width, info.height = args.width, args.height
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        info.k = k.reshape(-1).tolist()
        info.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        return info

    c_msg, d_msg, info = image(cf), image(depth_fields()), camera_info()
    commands: queue.Queue[str] = queue.Queue()
    if args.control:
        threading.Thread(target=_read_commands, args=(commands,), daemon=True).start()

    stop = False
    end = time.monotonic() + args.wait_subscribers
    while (
        time.monotonic() < end
        and min(p.get_subscription_count() for p in (pub_c, pub_d, pub_i)) < 1
    ):
        time.sleep(0.05)

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    period = 1.0 / args.rate
    published = 0
    next_t = time.monotonic()
    try:
        while not stop and (args.count == 0 or published < args.count):
            applied = []
            while not commands.empty():
                line = commands.get()
                try:
                    faults.apply(line)
                except ValueError as exc:
                    print(f'error {line}: {exc}', flush=True)
                    continue
                applied.append(line)
            if applied:
                d_msg, info = image(depth_fields()), camera_info()
                for m in (c_msg, d_msg, info):
                    m.header.frame_id = faults.frame_id or args.frame_id
            now = node.get_clock().now().nanoseconds + int(args.stamp_offset * 1e9)
            for name, m in (('color', c_msg), ('depth', d_msg), ('info', info)):
                stamp = now + int(faults.offset.get(name, 0.0) * 1e9)
                m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            if 'color' not in faults.stopped:
                pub_c.publish(c_msg)
            if 'depth' not in faults.stopped:
                pub_d.publish(d_msg)
            if 'info' not in faults.stopped:
                pub_i.publish(info)
            for line in applied:
                print(f'ok {line}', flush=True)
            published += 1
            if published == 1:
                print('ready', flush=True)
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
    finally:
        print(json.dumps({'published': published}), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
