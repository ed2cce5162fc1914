"""``robotracer sim g1``: the G1 room with its Unitree DDS peer and oracle (a ``sim`` plugin).

Loaded by :mod:`robotracer_sim.cli` (``WORLD_PLUGINS``): :func:`add_parser` adds the ``g1``
world with the common options plus the DDS domain and network interface.
"""

from __future__ import annotations

import argparse


def _check_scene(path: str) -> object:
    from robotracer_sim.g1.scene import load_g1_scene

    return load_g1_scene(path)


def _start(ros_args: list[str]) -> int:
    from robotracer_sim.nodes.g1_world_node import main

    return main(ros_args)


def _run(args: argparse.Namespace) -> int:
    from robotracer_sim.cli import run_world

    extra = [f'network_interface:={args.interface}']
    if args.domain is not None:
        extra.append(f'domain_id:={int(args.domain)}')
    return run_world(args, 'g1', _check_scene, _start, extra)


def add_parser(worlds: argparse._SubParsersAction) -> None:
    """Add ``g1`` to the ``sim`` command's worlds."""
    from robotracer_sim.cli import add_common_options

    p = worlds.add_parser(
        'g1',
        help='G1 humanoid room: head RGB-D camera, Unitree DDS peer (lowstate, arm_sdk, '
        'LocoClient), oracle',
        description='Start the G1 room (ROS node g1_world): the robot answers unitree_sdk2py '
        'clients over CycloneDDS and the oracle serves RoboTracer answers for its head camera.',
    )
    add_common_options(p, default_rate=10.0)
    p.add_argument(
        '--domain',
        type=int,
        metavar='ID',
        help='DDS domain of the Unitree interface (default: $ROS_DOMAIN_ID or 0)',
    )
    p.add_argument(
        '--interface',
        default='lo',
        metavar='IF',
        help="network interface of the Unitree DDS interface (default lo; '' = auto)",
    )
    p.set_defaults(func=_run)
