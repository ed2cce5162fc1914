"""Build-time check of the robotracer-ros image: every module the nodes import loads.

Run by ``docker/Dockerfile`` (runtime stage) through the entrypoint, so with ROS 2 and the
workspace sourced. A missing or broken module fails ``docker build`` instead of a robot bringup.
With ``--require-system-numpy`` it also fails when numpy is not Ubuntu's apt package: numpy 2
from PyPI would break every ROS Jazzy message module (they are compiled against numpy 1.x).

    python docker/image_check.py [--require-system-numpy] [--local-model]

With ``--local-model`` (the ``local-model`` target) it also checks the in-process transformers
backend: torch, transformers and accelerate import, and the Qwen2.5-VL / Qwen3-VL processor
classes load without torchvision (the backend's image-only path).

Exit status 0 when everything imports, 1 otherwise (one line per problem on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: (module, why the image needs it). First-party modules are checked against src/ by the tests.
MODULES: list[tuple[str, str]] = [
    ('rclpy', 'ROS 2 client library (apt)'),
    ('numpy', 'arrays (apt python3-numpy)'),
    ('cv2', 'image encoding (apt python3-opencv)'),
    ('yaml', 'config files (apt python3-yaml)'),
    ('pinocchio', 'UR5/G1 kinematics (ros-jazzy-pinocchio)'),
    ('coal', 'collision checking (ros-jazzy-coal)'),
    ('pink', 'IK (pin-pink)'),
    ('qpsolvers', 'QP front end of pink'),
    ('proxsuite', 'QP solver of pink'),
    ('toppra', 'time parameterisation'),
    ('ruckig', 'online trajectory generation'),
    ('mujoco', 'simulator'),
    ('rtde_control', 'UR5 rtde backend (ur_rtde)'),
    ('rtde_receive', 'UR5 rtde backend (ur_rtde)'),
    ('mcap_ros2.writer', 'MCAP recordings'),
    ('cyclonedds.domain', 'DDS of the Unitree SDK (libddsc from ros-jazzy-cyclonedds)'),
    ('unitree_sdk2py.core.channel', 'G1 backend (unitree-sdk2py-dimos)'),
    ('launch', 'ros2 launch'),
    ('launch_ros', 'ros2 launch'),
    ('tf2_ros', 'tf2 transforms'),
    ('robotracer_msgs.msg', 'our interfaces (built by colcon)'),
    ('robotracer_msgs.srv', 'our interfaces (built by colcon)'),
    ('robotracer_msgs.action', 'our interfaces (built by colcon)'),
    ('robotracer_ros.bringup', 'bringup description read by the launch files'),
    ('trace_executor.ur5.collision', 'pinocchio + coal together'),
    ('trace_executor.timing', 'toppra'),
    ('robotracer_sim.robot_data', 'example-robot-data layout'),
]

#: The transformers backend's stack (docker/Dockerfile, target local-model).
LOCAL_MODEL_MODULES: list[tuple[str, str]] = [
    ('torch', 'transformers backend (CUDA build from the public index)'),
    ('transformers', 'transformers backend'),
    ('accelerate', 'device_map at load time'),
    ('robotracer_ros.backends.transformers_local', 'the backend itself'),
]


def check_local_model() -> list[str]:
    """The Qwen-VL processor classes can be made image-only (no torchvision needed)."""
    problems = check_modules(LOCAL_MODEL_MODULES)
    if problems:
        return problems
    import transformers

    from robotracer_ros.backends.transformers_local import image_only

    for name in ('Qwen2_5_VLProcessor', 'Qwen3VLProcessor'):
        try:
            attrs = image_only(getattr(transformers, name)).get_attributes()
        except Exception as exc:  # noqa: BLE001 - any failure is a problem line
            problems.append(f'{name}: {type(exc).__name__}: {exc}')
            continue
        if attrs != ['image_processor', 'tokenizer']:
            problems.append(f'{name}: image-only processor has {attrs}')
    return problems


#: Where Debian/Ubuntu's python3-numpy lives.
SYSTEM_DIST_PACKAGES = '/usr/lib/python3/dist-packages/'


def check_modules(modules: list[tuple[str, str]]) -> list[str]:
    """Import every module.

    Args:
        modules: ``(module, why)`` pairs.

    Returns:
        One problem line per module that failed to import (empty when all loaded).
    """
    problems = []
    for name, why in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a native library that fails to load
            first = str(exc).splitlines()[0] if str(exc) else ''
            problems.append(f'{name} ({why}): {type(exc).__name__}: {first}')
    return problems


def check_system_numpy(prefix: str = SYSTEM_DIST_PACKAGES) -> list[str]:
    """Check that ``numpy`` is imported from ``prefix`` (the apt package) and is 1.x.

    Args:
        prefix: the folder numpy must come from.

    Returns:
        Problem lines (empty when numpy is the system one).
    """
    import numpy

    problems = []
    if not str(numpy.__file__).startswith(prefix):
        problems.append(
            f'numpy {numpy.__version__} is imported from {numpy.__file__}, not from {prefix}: '
            'a pip-installed numpy shadows the one ROS Jazzy is built against'
        )
    if not numpy.__version__.startswith('1.'):
        problems.append(f'numpy is {numpy.__version__}; ROS Jazzy message modules need numpy 1.x')
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the checks; print problems to stderr.

    Args:
        argv: command line arguments (default: ``sys.argv[1:]``).

    Returns:
        0 when every check passed, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--require-system-numpy',
        action='store_true',
        help=f'fail unless numpy 1.x is imported from {SYSTEM_DIST_PACKAGES}',
    )
    parser.add_argument(
        '--local-model',
        action='store_true',
        help='also check the transformers backend (torch, transformers, accelerate)',
    )
    args = parser.parse_args(argv)
    problems = check_modules(MODULES)
    if args.require_system_numpy:
        problems += check_system_numpy()
    if args.local_model:
        problems += check_local_model()
    for line in problems:
        print(f'image_check: {line}', file=sys.stderr)
    if not problems:
        print(f'image_check: {len(MODULES)} modules import', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
