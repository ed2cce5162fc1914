"""``robotracer ask "INSTRUCTION"``: call the perception node's GetTrace service, print the trace.

The same as ``ros2 service call /robotracer/get_trace robotracer_msgs/srv/GetTrace
"{instruction: '...'}"`` on a ROS install, for users without the ros2 CLI. Prints JSON; exits 0
on success, 1 with the node's error on stderr otherwise, 2 when the service is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from robotracer_ros.lifting import DEPTH_SOURCES

PROG = 'robotracer ask'
_DEPTH_CODES = {'': 0, 'model': 1, 'sensor': 2, 'fused': 3}


def response_json(resp: Any) -> dict[str, Any]:
    """A GetTrace response as JSON-friendly data.

    Args:
        resp: ``robotracer_msgs/srv/GetTrace.Response``.

    Returns:
        ``{"success", "error_code", "error_msg", "trace": {...}}``.
    """
    from robotracer_ros.trace_service import ERROR_NAMES

    t = resp.trace
    out: dict[str, Any] = {
        'success': bool(resp.success),
        'error_code': int(resp.error_code),
        'error': ERROR_NAMES.get(int(resp.error_code), 'unknown'),
        'error_msg': resp.error_msg,
    }
    if resp.success:
        out['trace'] = {
            'frame_id': t.header.frame_id,
            'stamp': t.header.stamp.sec + t.header.stamp.nanosec * 1e-9,
            'instruction': t.instruction,
            'points': [[round(p.x, 6), round(p.y, 6), round(p.z, 6)] for p in t.points],
            'pixels': [
                [round(float(u), 2), round(float(v), 2)]
                for u, v in zip(t.pixel_u, t.pixel_v, strict=True)
            ],
            'depth': [round(float(d), 6) for d in t.depth],
            'depth_source': [int(c) for c in t.depth_source],
            'depth_disagreement': [bool(b) for b in t.depth_disagreement],
            'camera_frame_id': t.camera_frame_id,
            'image_size': [int(t.image_width), int(t.image_height)],
            'model_id': t.model_id,
            'raw_answer': t.raw_answer,
            'inference_time': round(t.inference_time, 4),
            'processing_time': round(t.processing_time, 6),
            'status': int(t.status),
            'quality_note': t.quality_note,
        }
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``robotracer ask``; returns the exit code."""
    try:
        from robotracer_commander import Commander, Status
    except ImportError as exc:
        print(
            f'{PROG}: needs rclpy and robotracer_commander (source setup.bash): {exc}',
            file=sys.stderr,
        )
        return 2
    with Commander(get_trace=args.service) as cmd:
        reply = cmd.get_trace(
            args.instruction,
            trace_2d=bool(args.two_d),
            target_frame=args.target_frame,
            depth_source=_DEPTH_CODES[args.depth_source],
            timeout_s=args.timeout,
            wait_s=args.wait,
        )
    if reply.response is None:
        print(f'{PROG}: {reply.message}', file=sys.stderr)
        return 2 if reply.status in (Status.NO_SERVER, Status.BAD_GOAL) else 1
    out = response_json(reply.response)
    print(json.dumps(out))
    if not out['success']:
        print(f'{PROG}: {out["error"]}: {out["error_msg"]}', file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ask`` subcommand."""
    p = sub.add_parser(
        'ask',
        help='ask the perception node for a trace (calls /robotracer/get_trace)',
        description='Call the GetTrace service of a running perception node and print the '
        'trace as JSON.',
    )
    p.add_argument('instruction', help='e.g. "put the red cup on the plate"')
    p.add_argument('--2d', dest='two_d', action='store_true', help='ask for a 2D trace')
    p.add_argument('--target-frame', default='', help="frame of the points ('' = node default)")
    p.add_argument(
        '--depth-source',
        choices=['', *DEPTH_SOURCES],
        default='',
        help="'' = the node's depth_source parameter",
    )
    p.add_argument('--service', default='/robotracer/get_trace', help='service name')
    p.add_argument('--wait', type=float, default=10.0, help='wait for the service, seconds')
    p.add_argument('--timeout', type=float, default=120.0, help='wait for the answer, seconds')
    p.set_defaults(func=run)
