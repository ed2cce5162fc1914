r"""``robotracer query``: ask a model for a trace on an image, print it, draw it.

Examples::

    robotracer query --backend robotracer_http --url http://127.0.0.1:25547 \\
        --image rgb.png --depth depth.png --intrinsics 615 615 320 240 \\
        --instruction 'put the red cup on the plate' --out overlay.png
    # a published evaluation output (RoboTracer's Evaluation/outputs/*.jsonl), as it is:
    robotracer query --backend replay --replay RoboTracer_Intrinsics_Depth_3D.jsonl \\
        --image 0/image.png --intrinsics 421.66 421.66 253.93 192.12 --question-id 0 \\
        --instruction 'pick up the pale blue pillow ...'

The answer is lifted and filtered exactly as the perception node does by default
(``--no-filter``: one point per answer point).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from robotracer_ros.backends import BACKENDS, BackendError, make_backend
from robotracer_ros.backends.robotracer_http import INPUTS, TRANSPORTS
from robotracer_ros.cli.lift import add_lift_arguments, pipeline_options, trace_json
from robotracer_ros.lifting import intrinsics_matrix
from robotracer_ros.parsing import TraceParseError
from robotracer_ros.pipeline import answer_to_trace

PROG = 'robotracer query'


def _error(msg: object, code: int = 1) -> int:
    print(f'{PROG}: {" ".join(str(msg).split())}', file=sys.stderr)
    return code


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """Backend constructor options from the command line (unset ones left out).

    Args:
        args: parsed arguments.

    Returns:
        Options for :func:`robotracer_ros.backends.make_backend`.

    Raises:
        ValueError: a ``--option KEY=VALUE`` without ``=``.
    """
    opts: dict[str, Any] = {
        'url': args.url,
        'timeout_s': args.timeout,
        'retries': args.retries,
        'transport': args.transport,
        'inputs': args.inputs,
        'shared_dir': args.shared_dir,
        'api_key_env': args.api_key_env,
        'prompt_style': args.prompt_style,
        'model_path': args.model_path,
        'device': args.device,
        'dtype': args.dtype,
        'path': args.replay,
    }
    if args.question_id is not None:
        opts.update(match='question_id', question_id=args.question_id)
    if args.model:
        opts['model_name' if args.backend == 'transformers' else 'model'] = args.model
    for item in args.option or []:
        if '=' not in item:
            raise ValueError(f'--option {item!r} must be KEY=VALUE')
        key, value = item.split('=', 1)
        try:
            opts[key] = json.loads(value)
        except ValueError:
            opts[key] = value
    return {k: v for k, v in opts.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    """Run ``robotracer query``; returns the exit code."""
    from robotracer_ros import images

    mode_3d = not args.two_d
    depth_source = args.depth_source or ('fused' if args.depth else 'model')
    if not mode_3d:
        depth_source = 'sensor'
        if not args.depth:
            return _error('a 2D trace is lifted with the depth image: give --depth', 2)
    try:
        K = intrinsics_matrix(*args.intrinsics)
        rgb = images.read_image(args.image)
        if rgb.ndim != 3:
            rgb = np.repeat(rgb[..., None], 3, axis=2).astype(np.uint8)
        if rgb.dtype != np.uint8:
            return _error(f'{args.image!r} must be an 8-bit colour image', 2)
        depth = images.read_depth(args.depth) if args.depth else None
        options = pipeline_options(
            depth_source, not args.no_filter, args.resample, args.coordinates
        )
        backend = make_backend(args.backend, **backend_options(args))
    except (ValueError, BackendError) as exc:
        return _error(exc, 2)
    t0 = time.perf_counter()
    try:
        answer = backend(rgb, depth, K, args.instruction, mode_3d=mode_3d)
    except BackendError as exc:
        return _error(f'model backend {args.backend} failed ({exc.kind}): {exc}')
    h, w = rgb.shape[:2]
    try:
        result = answer_to_trace(
            answer.text,
            width=w,
            height=h,
            K=K,
            depth=depth,
            depth_scale=args.depth_scale,
            options=options,
        )
    except (TraceParseError, ValueError) as exc:
        print(
            json.dumps(
                {
                    'instruction': args.instruction,
                    'model_id': answer.model_id,
                    'raw_answer': answer.text,
                    'error': str(exc),
                }
            )
        )
        return _error(f'bad answer: {exc}')
    out = {
        'instruction': args.instruction,
        'model_id': answer.model_id,
        'raw_answer': answer.text,
        'frame': 'camera_optical',
        **trace_json(result),
        'timings': {
            'inference_s': round(answer.elapsed_s, 4),
            'processing_s': round(result.processing_time_s, 6),
            'total_s': round(time.perf_counter() - t0, 4),
        },
    }
    if args.out:
        from robotracer_ros.annotate import draw_trace

        valid = np.all(np.isfinite(result.points_cam), axis=1)
        overlay = draw_trace(rgb, result.pixels, valid=valid, label=args.instruction)
        try:
            with open(args.out, 'wb') as f:
                f.write(images.encode_png(overlay, compression=3))
        except OSError as exc:
            return _error(f'cannot write {args.out!r}: {exc.strerror or exc}')
        out['overlay'] = args.out
    print(json.dumps(out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``query`` subcommand."""
    p = sub.add_parser(
        'query',
        help='ask a model for a trace on an image; print it (JSON) and draw it',
        description='Send an RGB(-D) image and an instruction to a model backend, lift the '
        'answer to metric 3D points in the camera optical frame and print JSON '
        '(with timings). --out writes the trace drawn on the image.',
    )
    p.add_argument('--backend', required=True, choices=list(BACKENDS))
    p.add_argument('--url', help='server URL (robotracer_http, openai)')
    p.add_argument('--model', help='model name (reported in model_id; openai: the served model)')
    p.add_argument('--image', required=True, metavar='RGB.png', help='colour image')
    p.add_argument('--instruction', required=True, help='what the robot should do')
    p.add_argument('--out', metavar='overlay.png', help='write the trace drawn on the image')
    p.add_argument(
        '--2d', dest='two_d', action='store_true', help='ask for a 2D trace (lifted with --depth)'
    )
    p.add_argument('--no-filter', action='store_true', help='one point per answer point')
    add_lift_arguments(p)
    p.set_defaults(intrinsics=None)
    g = p.add_argument_group('backend options')
    g.add_argument('--timeout', type=float, help='per-attempt timeout, seconds')
    g.add_argument('--retries', type=int, help='extra attempts on connection errors/5xx')
    g.add_argument(
        '--transport',
        choices=list(TRANSPORTS),
        help="robotracer_http form: base64 (default; the authors' released servers) or paths",
    )
    g.add_argument(
        '--inputs',
        choices=list(INPUTS),
        help='robotracer_http: what the model is given (default: base64 rgbd, paths '
        'rgbd_intrinsics)',
    )
    g.add_argument('--shared-dir', help='robotracer_http paths form: folder the server reads')
    g.add_argument('--api-key-env', help='openai: environment variable holding the API key')
    g.add_argument('--prompt-style', choices=['json', 'robotracer'], help='openai/transformers')
    g.add_argument('--model-path', help='transformers: local checkpoint folder')
    g.add_argument('--device', help='transformers: torch device (cpu, cuda, ...)')
    g.add_argument(
        '--dtype',
        choices=['auto', 'float32', 'float16', 'bfloat16'],
        help='transformers: weights dtype',
    )
    g.add_argument(
        '--replay',
        metavar='FILE',
        help='replay: JSONL file of recorded answers, or a published evaluation output '
        '(prompt / model_prediction per line)',
    )
    g.add_argument(
        '--question-id',
        metavar='ID',
        help='replay: answer with the line of this question_id (evaluation outputs)',
    )
    g.add_argument(
        '--option',
        action='append',
        metavar='KEY=VALUE',
        help='any other backend option (JSON values allowed); repeatable',
    )
    p.set_defaults(func=_checked_run)


def _checked_run(args: argparse.Namespace) -> int:
    if args.intrinsics is None:
        return _error('--intrinsics FX FY CX CY is required', 2)
    return run(args)
