"""A synthetic RGB-D camera in its own process (for the perception DDS tests and benchmark).

Publishes, RealSense-style: colour (rgb8/bgr8), aligned depth (16UC1 mm or 32FC1 m) and
camera_info, with identical stamps, at ``--rate`` Hz. Scene: a wall at ``WALL_M`` with a box
face at ``BOX_M`` in the image region ``BOX`` (rows, cols as fractions of the image); the
intrinsics are fx = fy = 600 * W / 640, cx = W / 2, cy = H / 2. Prints ``ready`` once the first
set is out, and a JSON summary ``{"published": N}`` when it stops (SIGINT or ``--count``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
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


def main() -> int:
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
    if args.depth_encoding == '16UC1':
        df = images.numpy_to_image_fields(images.depth_to_millimetres(depth_m), '16UC1')
    else:
        df = images.numpy_to_image_fields(depth_m, '32FC1')

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

    c_msg, d_msg = image(cf), image(df)
    info = CameraInfo()
    info.header.frame_id = args.frame_id
    info.width, info.height = args.width, args.height
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.k = K.reshape(-1).tolist()
    info.p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]

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
            stamp = node.get_clock().now().nanoseconds + int(args.stamp_offset * 1e9)
            for m in (c_msg, d_msg, info):
                m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            pub_c.publish(c_msg)
            if not args.no_depth:
                pub_d.publish(d_msg)
            if not args.no_info:
                pub_i.publish(info)
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
