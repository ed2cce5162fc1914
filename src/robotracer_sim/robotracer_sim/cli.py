"""``robotracer sim WORLD ...``: start a simulated world with its oracle model server.

Registered in the ``robotracer.commands`` entry-point group as ``sim``. Worlds:

- ``ur5``: the UR5 tabletop (:mod:`robotracer_sim.nodes.ur5_world_node`), always present.
- more worlds plug in without editing this file: for each module in :data:`WORLD_PLUGINS`
  that can be imported (e.g. ``robotracer_sim.g1.cli``), ``add_parser(worlds)`` is called with
  the ``sim`` command's sub-parsers; it adds its world's sub-parser (``g1``) and sets
  ``func(args) -> int`` on it. A plugin that is absent is skipped; one that fails to import is
  listed as unavailable with the reason.

The common options (``--scene FILE --rate HZ --oracle-port PORT --viewer``) map onto the node's
ROS parameters; anything after ``--ros-args`` (last) is passed through unchanged.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import importlib
import sys

WORLD_PLUGINS: tuple[str, ...] = ('robotracer_sim.g1.cli',)


def add_common_options(p: argparse.ArgumentParser, default_rate: float = 15.0) -> None:
    """Add the options every world shares (scene, rate, oracle, viewer, ROS passthrough).

    Args:
        p: the world's sub-parser.
        default_rate: the world's default camera rate, Hz.

    """
    p.add_argument('--scene', metavar='FILE', help='scene YAML (default: the shipped scene)')
    p.add_argument(
        '--rate',
        type=float,
        default=default_rate,
        metavar='HZ',
        help=f'camera render + publish rate (default {default_rate:g})',
    )
    p.add_argument(
        '--oracle-port',
        type=int,
        default=25547,
        metavar='PORT',
        help='port of the oracle model server on 127.0.0.1 (default 25547; 0: any free port)',
    )
    p.add_argument('--oracle-latency', type=float, metavar='S', help='oracle answer delay (s)')
    p.add_argument('--no-oracle', action='store_true', help='do not start the oracle server')
    p.add_argument('--viewer', action='store_true', help='open a MuJoCo viewer (needs a display)')
    p.add_argument(
        '--save-frames',
        metavar='DIR',
        help='write DIR/color.png and DIR/depth.png every second (to watch without RViz)',
    )
    p.add_argument(
        '--ros-args',
        dest='ros_args',
        nargs=argparse.REMAINDER,
        default=[],
        metavar='ARG',
        help='everything after it goes to the node as ROS arguments '
        '(e.g. --ros-args -p use_sim_time:=true); must come last',
    )


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """Translate the common options into ``--ros-args -p name:=value`` arguments.

    Args:
        args: parsed options of a world's sub-parser.

    Returns:
        The argument list for ``rclpy.init(args=...)``.

    Raises:
        ValueError: an option is out of range (the message names it).

    """
    if not 0.5 <= args.rate <= 60.0:
        raise ValueError(f'--rate must be in [0.5, 60] Hz, got {args.rate:g}')
    if not 0 <= args.oracle_port <= 65535:
        raise ValueError(f'--oracle-port must be in [0, 65535], got {args.oracle_port}')
    params = [f'rate:={float(args.rate)}', f'oracle_port:={int(args.oracle_port)}']
    if args.scene:
        params.append(f'scene:={args.scene}')
    if args.oracle_latency is not None:
        params.append(f'oracle_latency:={float(args.oracle_latency)}')
    if args.no_oracle:
        params.append('oracle_enabled:=false')
    if args.viewer:
        params.append('viewer:=true')
    if args.save_frames:
        params.append(f'save_frames_dir:={args.save_frames}')
    extra = list(args.ros_args or [])
    out = ['robotracer-sim', '--ros-args']
    for p in params:
        out += ['-p', p]
    return out + extra


def run_world(
    args: argparse.Namespace,
    world: str,
    check_scene: Callable[[str], object],
    start: Callable[[list[str]], int],
    extra_params: Sequence[str] = (),
) -> int:
    """Check the options and the scene file, then run a world's node.

    Args:
        args: parsed options of the world's sub-parser (see :func:`add_common_options`).
        world: the world's name, for messages (``ur5``).
        check_scene: loads and validates a scene file (raises ``SceneError``); called only
            when ``--scene`` is given, so a bad file fails before ROS starts.
        start: the node's ``main(ros_args)``.
        extra_params: more ``name:=value`` node parameters (before the user's ``--ros-args``).

    Returns:
        The node's exit code, or 2 when an option or the scene file is invalid.

    """
    try:
        ros_args = ros_arguments(args)
    except ValueError as exc:
        print(f'robotracer sim {world}: {exc}', file=sys.stderr)
        return 2
    if args.scene:
        from robotracer_sim.common.scene_schema import SceneError

        try:
            check_scene(args.scene)  # fail fast, with the field named, before ROS starts
        except SceneError as exc:
            print(f'robotracer sim {world}: {exc}', file=sys.stderr)
            return 2
    i = ros_args.index('--ros-args') + 1
    ros_args[i:i] = [a for param in extra_params for a in ('-p', param)]
    return start(ros_args)


def _check_ur5_scene(path: str) -> object:
    from robotracer_sim.ur5.scene import load_scene

    return load_scene(path)


def _start_ur5(ros_args: list[str]) -> int:
    from robotracer_sim.nodes.ur5_world_node import main

    return main(ros_args)


def _run_ur5(args: argparse.Namespace) -> int:
    return run_world(args, 'ur5', _check_ur5_scene, _start_ur5)


def add_ur5_parser(worlds: argparse._SubParsersAction) -> None:
    """Add ``ur5`` to the ``sim`` command's worlds."""
    p = worlds.add_parser(
        'ur5',
        help='UR5 tabletop world: RGB-D camera, joint trajectory topic, gripper, oracle',
        description='Start the UR5 tabletop world (ROS node ur5_world) and its oracle server.',
    )
    add_common_options(p)
    p.set_defaults(func=_run_ur5)


def _load_plugin(module: str) -> Callable[[argparse._SubParsersAction], None] | str | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None  # the plugin is not installed: nothing to add
        return f'{type(exc).__name__}: {exc}'
    except Exception as exc:  # a broken plugin must not break `robotracer sim ur5`
        return f'{type(exc).__name__}: {exc}'
    add = getattr(mod, 'add_parser', None)
    return add if callable(add) else f'{module} has no add_parser(worlds)'


def register(subparsers: argparse._SubParsersAction) -> None:
    """Entry point of ``robotracer sim`` (group ``robotracer.commands``)."""
    p = subparsers.add_parser(
        'sim',
        help='run a MuJoCo world (ur5, g1) with its ground-truth oracle model server',
        description='Run a simulated robot world that publishes like the real robot and '
        'serves a ground-truth model speaking the RoboTracer HTTP API.',
    )
    worlds = p.add_subparsers(dest='world', metavar='WORLD')
    add_ur5_parser(worlds)
    for module in WORLD_PLUGINS:
        plugin = _load_plugin(module)
        if plugin is None:
            continue
        if isinstance(plugin, str):
            parts = module.split('.')
            name = parts[-2] if len(parts) > 1 and parts[-1] == 'cli' else parts[-1]
            broken = worlds.add_parser(name, help=f'(unavailable: {plugin})')
            broken.set_defaults(
                func=lambda _a, n=name, e=plugin: _fail(f'robotracer sim {n}: unavailable: {e}')
            )
            continue
        plugin(worlds)
    p.set_defaults(func=lambda _a: _fail('robotracer sim: choose a world, e.g. ur5'))


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
