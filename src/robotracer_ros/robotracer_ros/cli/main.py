"""Entry point of the ``robotracer`` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
import sys

from robotracer_ros import __version__

GROUP = 'robotracer.commands'


def _builtin_commands() -> dict[str, Callable[[argparse._SubParsersAction], None]]:
    from robotracer_ros.cli import ask, doctor, launch, lift, query

    return {
        'doctor': doctor.register,
        'launch': launch.register,
        'lift': lift.register,
        'query': query.register,
        'ask': ask.register,
    }


def _plugin_commands() -> dict[str, Callable[[argparse._SubParsersAction], None]]:
    found: dict[str, Callable[[argparse._SubParsersAction], None]] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not break the other commands

            def _broken(
                sub: argparse._SubParsersAction,
                name: str = ep.name,
                err: str = f'{type(exc).__name__}: {exc}',
            ) -> None:
                p = sub.add_parser(name, help=f'(unavailable: {err})')
                p.set_defaults(func=lambda _a: _fail(f'robotracer {name}: unavailable: {err}'))

            found[ep.name] = _broken
    return found


def _fail(msg: str) -> int:
    print(msg, file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog='robotracer',
        description='RoboTracer ROS 2: put a trace-predicting vision-language model on a robot.',
    )
    parser.add_argument('--version', action='version', version=f'robotracer {__version__}')
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands = _builtin_commands()
    for name, reg in _plugin_commands().items():
        commands.setdefault(name, reg)
    for name in sorted(commands):
        commands[name](sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``robotracer`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
