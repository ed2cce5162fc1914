"""``robotracer doctor``: report the environment and whether the core works."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from typing import Any

# (import name, what it enables) — optional: missing ones are reported, not fatal.
OPTIONAL = [
    ('numpy', 'arrays (core)'),
    ('cv2', 'image encoding, annotated images'),
    ('torch', 'transformers backend'),
    ('transformers', 'transformers backend (local checkpoints)'),
    ('accelerate', 'transformers backend: weights loaded straight onto the GPU (device_map)'),
    ('mujoco', 'simulator'),
    ('pinocchio', 'UR5/G1 kinematics'),
    ('pink', 'IK (pin-pink)'),
    ('toppra', 'time parameterisation'),
    ('unitree_sdk2py', 'G1 backend (unitree_sdk2py)'),
    ('rtde_control', 'UR5 rtde backend (ur_rtde)'),
    ('moveit', 'UR5 moveit backend (moveit_py)'),
    ('launch', 'ros2 launch files'),
    ('launch_ros', 'ros2 launch files'),
    ('tf2_ros', 'tf2 transforms (else static transforms from config)'),
    ('mcap_ros2', 'MCAP recordings'),
]
# Core: without these the product cannot run at all.
CORE_INTERFACES = [
    ('robotracer_msgs.msg', ['SpatialTrace', 'WholeBodyTarget']),
    ('robotracer_msgs.srv', ['GetTrace', 'GetObjectPoses', 'SetObjectPose']),
    ('robotracer_msgs.action', ['ExecuteInstruction', 'ExecuteTrace']),
]


def _version(mod: Any) -> str:
    return str(getattr(mod, '__version__', '') or getattr(mod, 'VERSION', '') or 'ok')


def check_optional() -> dict[str, str]:
    """Return ``{module: version or 'missing: reason'}`` for every optional component."""
    out: dict[str, str] = {}
    for name, _what in OPTIONAL:
        try:
            out[name] = _version(importlib.import_module(name))
        except Exception as exc:  # ImportError, or a broken native library
            out[name] = f'missing ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})'
    return out


def check_core() -> tuple[dict[str, str], list[str]]:
    """Check rclpy, the RMW and the built interfaces. Returns (facts, problems)."""
    facts: dict[str, str] = {}
    problems: list[str] = []
    try:
        import rclpy
        from rclpy.utilities import get_rmw_implementation_identifier

        facts['rclpy'] = 'ok'
        try:
            facts['rmw'] = get_rmw_implementation_identifier()
        except Exception as exc:
            problems.append(f'RMW implementation not loadable: {exc}')
    except Exception as exc:
        problems.append(
            f'rclpy does not import: {type(exc).__name__}: {exc} (did you `source setup.bash`?)'
        )
        rclpy = None  # noqa: F841
    for module, names in CORE_INTERFACES:
        try:
            mod = importlib.import_module(module)
            missing = [n for n in names if not hasattr(mod, n)]
            if missing:
                problems.append(f'{module} lacks {", ".join(missing)} (rebuild: make setup)')
            else:
                facts[module] = 'ok'
        except Exception as exc:
            problems.append(
                f'{module} does not import: {exc} (run `make setup`, then `source setup.bash`)'
            )
    return facts, problems


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 1 when the core is broken."""
    facts, problems = check_core()
    report = {
        'python': sys.version.split()[0],
        'platform': platform.platform(),
        'ros_distro': os.environ.get('ROS_DISTRO', 'unset'),
        'rmw': facts.get('rmw', os.environ.get('RMW_IMPLEMENTATION', 'unknown')),
        'ros_domain_id': os.environ.get('ROS_DOMAIN_ID', '0 (default)'),
        'core': {**facts, **({'problems': problems} if problems else {})},
        'optional': check_optional(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f'python       {report["python"]}  ({report["platform"]})')
        print(f'ROS distro   {report["ros_distro"]}')
        print(f'RMW          {report["rmw"]}   ROS_DOMAIN_ID={report["ros_domain_id"]}')
        for key, val in facts.items():
            print(f'core         {key:<24} {val}')
        for p in problems:
            print(f'core         PROBLEM: {p}')
        for key, val in report['optional'].items():
            print(f'optional     {key:<24} {val}')
        print('core OK' if not problems else 'core BROKEN — see PROBLEM lines above')
    return 1 if problems else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``doctor`` subcommand."""
    p = sub.add_parser(
        'doctor',
        help='report the environment (Python, ROS, RMW, optional parts)',
        description='Report the Python, ROS distro, RMW and which optional '
        'components import. Exits 1 when the core is broken.',
    )
    p.add_argument('--json', action='store_true', help='print the report as JSON')
    p.set_defaults(func=run)
