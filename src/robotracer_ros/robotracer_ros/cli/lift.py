r"""``robotracer lift``: a model's answer -> metric 3D points (JSON), one answer or a batch.

Examples::

    robotracer lift --answer '[(726, 624, 1.533), (738, 574, 1.499)]' \\
        --width 640 --height 480 --intrinsics 615 615 320 240
    echo '[(500, 500)]' | robotracer lift --answer - --width 640 --height 480 \\
        --intrinsics 615 615 320 240 --depth depth.png --depth-source sensor
    robotracer lift --batch answers.jsonl --filter > points.jsonl

``--filter`` applies exactly the perception node's default filter
(:func:`robotracer_ros.perception_config.default_pipeline_options`); each trace is printed with
its ``status`` (valid / degraded / invalid) and ``note`` beside its points.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import math
import sys
from typing import Any, TextIO

import numpy as np

from robotracer_ros.lifting import DEPTH_SOURCES, intrinsics_matrix
from robotracer_ros.parsing import COORDINATES, TraceParseError
from robotracer_ros.perception_config import default_pipeline_options
from robotracer_ros.pipeline import PipelineOptions, TraceResult, answer_to_trace

PROG = 'robotracer lift'


def _num(v: float, digits: int = 6) -> float | None:
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


def rows(arr: np.ndarray, digits: int = 6) -> list[list[float | None]]:
    """Rows of an array as JSON-friendly lists (NaN -> null, rounded).

    Args:
        arr: (N, k) array.
        digits: decimals kept.

    Returns:
        A list of N lists.
    """
    return [[_num(v, digits) for v in row] for row in np.asarray(arr, dtype=float)]


def trace_json(result: TraceResult) -> dict[str, Any]:
    """The JSON form of a trace printed by the CLI commands.

    Args:
        result: a lifted trace.

    Returns:
        ``{"points", "pixels", "depth", "depth_source", "disagreement", "status", "note"}``;
        points in metres (camera optical frame unless transformed), pixels in the colour image.
    """
    return {
        'points': rows(result.points),
        'pixels': rows(result.pixels, 2),
        'depth': [_num(v) for v in result.depth],
        'depth_source': result.depth_source_names(),
        'disagreement': [bool(v) for v in result.disagreement],
        'status': result.status_name,
        'note': result.note,
    }


def pipeline_options(
    depth_source: str,
    use_filter: bool,
    resample_m: float | None = None,
    coordinates: str | None = None,
) -> PipelineOptions:
    """Pipeline options from CLI flags: the perception node's defaults, with these changes.

    Args:
        depth_source: model, sensor or fused.
        use_filter: filter the trace exactly as the node does by default (drop points without
            valid depth, drop single spikes); False: one output point per answer point.
        resample_m: resampling spacing in metres (filter only), or None.
        coordinates: the model's coordinate convention (None: the node's default).

    Returns:
        The options.
    """
    opts = default_pipeline_options(depth_source)
    filt = opts.filter if use_filter else None
    if filt is not None and resample_m:
        filt = replace(filt, resample_spacing_m=resample_m)
    return replace(opts, filter=filt, coordinates=coordinates or opts.coordinates)


def _error(msg: str, code: int = 1) -> int:
    print(f'{PROG}: {" ".join(str(msg).split())}', file=sys.stderr)
    return code


def _batch_line(line: str, options: PipelineOptions) -> dict[str, Any]:
    if not line.strip():
        return {'error': 'empty line'}
    try:
        req = json.loads(line)
    except ValueError as exc:
        return {'error': f'line is not JSON: {exc}'}
    if not isinstance(req, dict):
        return {'error': 'line must be a JSON object with answer, width, height, intrinsics'}
    missing = [k for k in ('answer', 'width', 'height', 'intrinsics') if k not in req]
    if missing:
        return {'error': f'missing key(s): {", ".join(missing)}'}
    answer, width, height = req['answer'], req['width'], req['height']
    if not isinstance(answer, str):
        return {'error': 'answer must be a string'}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        return {'error': 'width and height must be positive integers'}
    try:
        K = np.asarray(req['intrinsics'], dtype=float)
        result = answer_to_trace(answer, width=width, height=height, K=K, options=options)
    except (TraceParseError, ValueError, TypeError) as exc:
        return {'error': ' '.join(str(exc).split())}
    return {
        'points': rows(result.points),
        'pixels': rows(result.pixels, 2),
        'status': result.status_name,
        'note': result.note,
    }


def run_batch(src: TextIO, out: TextIO, options: PipelineOptions) -> int:
    """Lift one JSON request per input line; write one JSON result per line, in order.

    Args:
        src: input lines ``{"answer", "width", "height", "intrinsics"}``.
        out: where the result lines go: ``{"points", "pixels", "status", "note"}`` or
            ``{"error"}``.
        options: how to lift.

    Returns:
        The number of lines processed.
    """
    n = 0
    for line in src:
        out.write(json.dumps(_batch_line(line, options)) + '\n')
        out.flush()
        n += 1
    return n


def run(args: argparse.Namespace) -> int:
    """Run ``robotracer lift``; returns the exit code."""
    depth_source = args.depth_source or ('fused' if args.depth else 'model')
    try:
        options = pipeline_options(depth_source, args.filter, args.resample, args.coordinates)
    except ValueError as exc:
        return _error(exc, 2)
    if args.batch is not None:
        if args.answer is not None or args.depth:
            return _error('--batch takes no --answer or --depth (each line brings its own)', 2)
        if args.batch == '-':
            run_batch(sys.stdin, sys.stdout, options)
            return 0
        try:
            src = open(args.batch, encoding='utf-8', errors='replace')
        except OSError as exc:
            return _error(f'cannot read {args.batch!r}: {exc.strerror or exc}', 2)
        with src:
            run_batch(src, sys.stdout, options)
        return 0
    if args.answer is None:
        return _error('give --answer TEXT (or - for stdin) or --batch FILE', 2)
    if args.width is None or args.height is None or args.intrinsics is None:
        return _error('--width, --height and --intrinsics FX FY CX CY are required', 2)
    answer = sys.stdin.read() if args.answer == '-' else args.answer
    depth = None
    try:
        K = intrinsics_matrix(*args.intrinsics)
        if args.depth:
            from robotracer_ros.images import read_depth

            depth = read_depth(args.depth)
    except ValueError as exc:
        return _error(exc, 2)
    try:
        result = answer_to_trace(
            answer,
            width=args.width,
            height=args.height,
            K=K,
            depth=depth,
            depth_scale=args.depth_scale,
            options=options,
        )
    except TraceParseError as exc:
        return _error(f'bad answer: {exc}')
    except ValueError as exc:
        return _error(exc)
    print(json.dumps(trace_json(result)))
    return 0


def add_lift_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``lift`` and ``query`` for the camera and depth."""
    p.add_argument(
        '--intrinsics',
        nargs=4,
        type=float,
        metavar=('FX', 'FY', 'CX', 'CY'),
        help='colour camera intrinsics in pixels',
    )
    p.add_argument(
        '--depth',
        metavar='FILE',
        help='depth image registered to the colour image: 16-bit PNG (mm) or .npy',
    )
    p.add_argument(
        '--depth-scale',
        type=float,
        default=None,
        metavar='S',
        help='metres per depth unit (default: 0.001 for 16-bit, 1 for float)',
    )
    p.add_argument(
        '--depth-source',
        choices=DEPTH_SOURCES,
        default=None,
        help="where each point's depth comes from (default: fused with --depth, else model)",
    )
    p.add_argument(
        '--resample',
        type=float,
        default=None,
        metavar='M',
        help='with filtering: resample the trace to this spacing, metres',
    )
    p.add_argument(
        '--coordinates',
        choices=COORDINATES,
        default=None,
        help="the model's x, y convention (default normalized_1000, as the node)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``lift`` subcommand."""
    p = sub.add_parser(
        'lift',
        help='turn a model answer into metric 3D points (JSON)',
        description='Parse a trace answer ([(x, y, d), ...], x/y in 0-1000, d in metres) and '
        'lift it to 3D points in the camera optical frame (x right, y down, z '
        'forward). Prints {"points", "pixels", "depth_source", ...}; exits 1 with '
        'a one-line error for a bad answer.',
    )
    p.add_argument('--answer', metavar='TEXT', help="the model's answer; '-' reads stdin")
    p.add_argument(
        '--batch',
        metavar='FILE',
        help='JSON lines {answer, width, height, '
        "intrinsics}; '-' reads stdin; one output line per input line: "
        '{points, pixels, status, note} or {error}',
    )
    p.add_argument('--width', type=int, help='colour image width, pixels')
    p.add_argument('--height', type=int, help='colour image height, pixels')
    add_lift_arguments(p)
    p.add_argument(
        '--filter',
        action='store_true',
        help="apply the perception node's default filter (drop points without valid depth "
        'and single spikes off the path) and say why in status/note (default: one output '
        'point per answer point)',
    )
    p.set_defaults(func=run)
