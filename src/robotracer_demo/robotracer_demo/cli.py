"""``robotracer demo ur5|g1`` and ``python -m robotracer_demo``: run the simulator demo."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn

from robotracer_demo.scenarios import DEMOS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The demo's command-line arguments."""
    p.add_argument('robot', choices=sorted(DEMOS), help='which robot demo')
    p.add_argument(
        '--out', metavar='DIR', default='', help='output folder (default out/demo, out/demo-g1)'
    )
    p.add_argument(
        '--only',
        type=int,
        nargs='+',
        metavar='N',
        help='run only these instructions (1-based numbers)',
    )
    p.add_argument(
        '--oracle-port', type=int, default=0, metavar='PORT', help='oracle port (0: a free one)'
    )
    p.add_argument('--no-record', action='store_true', help='do not write demo.mcap')
    p.add_argument(
        '--image-period',
        type=float,
        default=0.5,
        metavar='S',
        help='seconds between recorded camera frames (default 0.5 = 2 Hz)',
    )
    p.add_argument(
        '--ready-timeout',
        type=float,
        default=120.0,
        metavar='S',
        help='longest wait for the bringup (default 120 s)',
    )
    p.add_argument('--verbose', action='store_true', help="echo the nodes' output")


def _sigterm(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Entry of ``robotracer demo``."""
    from robotracer_demo.run import run_demo

    if args.image_period <= 0:
        print(f'--image-period must be > 0, got {args.image_period}', file=sys.stderr)
        return 2
    # SIGTERM (e.g. a CI timeout) shuts the bringup down like Ctrl-C does.
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = args.out or ('out/demo' if args.robot == 'ur5' else f'out/demo-{args.robot}')
    return run_demo(
        args.robot,
        out,
        only=args.only,
        oracle_port=args.oracle_port,
        record=not args.no_record,
        image_period_s=args.image_period,
        ready_timeout_s=args.ready_timeout,
        verbose=args.verbose,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand (entry-point group ``robotracer.commands``)."""
    p = sub.add_parser(
        'demo',
        help='run the simulator demo: three instructions, pictures, MCAP, summary (make demo)',
        description='Bring up the simulated robot headless, run the demo instructions (one '
        'with the target moved mid-motion), and write pictures, an MCAP recording and '
        'summary.json.',
    )
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """``python -m robotracer_demo``."""
    parser = argparse.ArgumentParser(prog='python -m robotracer_demo')
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 130
