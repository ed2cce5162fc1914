"""Parameters the simulator nodes share: descriptors, common tables, image QoS, the oracle.

A node's parameter table is a list of ``(name, default, descriptor)``; the tables here are the
entries both world nodes declare with the same names, defaults and descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from robotracer_sim.oracle import OracleConfig

ParameterTable = list[tuple[str, Any, ParameterDescriptor]]

RELIABILITIES = ('reliable', 'best_effort')


def describe(
    text: str,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
    read_only: bool = False,
) -> ParameterDescriptor:
    """A parameter descriptor with a description and, when ``lo`` and ``hi`` are given, a range.

    Args:
        text: the description.
        lo: lowest allowed value.
        hi: highest allowed value.
        integer: an integer range (step 1) instead of a floating-point one.
        read_only: the parameter cannot be set after declaration.

    Returns:
        The descriptor.

    """
    d = ParameterDescriptor(description=text, read_only=read_only)
    if lo is not None and hi is not None:
        if integer:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    return d


def image_qos_parameters(reliability_description: str) -> ParameterTable:
    """``image_reliability`` (default ``reliable``) and ``image_depth`` (default 5).

    Args:
        reliability_description: the node's description of ``image_reliability``.

    Returns:
        The two entries.

    """
    return [
        ('image_reliability', 'reliable', describe(reliability_description)),
        ('image_depth', 5, describe('image QoS history depth', 1, 100, integer=True)),
    ]


OBJECT_POSE_SERVICE_PARAMETERS: ParameterTable = [
    ('get_object_poses_service', '/sim/get_object_poses', describe('GetObjectPoses service')),
    ('set_object_pose_service', '/sim/set_object_pose', describe('SetObjectPose service')),
]

ORACLE_PARAMETERS: ParameterTable = [
    ('oracle_enabled', True, describe('serve the ground-truth oracle (RoboTracer HTTP API)')),
    ('oracle_host', '127.0.0.1', describe('oracle bind address (loopback by default)')),
    ('oracle_port', 25547, describe('oracle TCP port (0: any free port)', 0, 65535, True)),
    ('oracle_latency', 0.5, describe('oracle answer delay, s (emulates a model)', 0.0, 60.0)),
    ('oracle_noise', 0.0, describe('std of Gaussian noise on trace points, m', 0.0, 1.0)),
    ('oracle_malformed_rate', 0.0, describe('probability of a malformed answer', 0.0, 1.0)),
    ('oracle_seed', -1, describe('oracle random seed (-1: random)', -1, 2**31 - 1, True)),
]

#: Ways to watch a world without RViz: a MuJoCo viewer window, or PNG frames on disk.
WATCH_PARAMETERS: ParameterTable = [
    ('viewer', False, describe('open a MuJoCo viewer window (needs a display)')),
    ('save_frames_dir', '', describe('write color.png/depth.png here periodically (empty: no)')),
    ('save_frames_period', 1.0, describe('seconds between saved frames', 0.1, 3600.0)),
]


def image_qos(reliability: str, depth: int) -> QoSProfile:
    """The QoS of the image and camera_info publishers.

    Args:
        reliability: ``'reliable'`` or ``'best_effort'`` (the ``image_reliability`` parameter).
        depth: history depth (``image_depth``).

    Returns:
        A keep-last profile.

    Raises:
        ValueError: an unknown reliability (the message names the parameter).

    """
    if reliability not in RELIABILITIES:
        raise ValueError(
            f"image_reliability must be 'reliable' or 'best_effort', got {reliability!r}"
        )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=(
            ReliabilityPolicy.RELIABLE
            if reliability == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT
        ),
    )


def oracle_config(param: Callable[[str], Any]) -> OracleConfig:
    """The oracle's configuration from the ``oracle_*`` parameters.

    Args:
        param: the node's parameter getter (name -> value).

    Returns:
        The configuration (``oracle_seed`` < 0: a random seed).

    """
    seed = int(param('oracle_seed'))
    return OracleConfig(
        latency=float(param('oracle_latency')),
        noise_std=float(param('oracle_noise')),
        malformed_rate=float(param('oracle_malformed_rate')),
        seed=None if seed < 0 else seed,
    )
