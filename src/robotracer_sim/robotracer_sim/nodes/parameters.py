"""Parameters the simulator nodes share: common tables, image QoS, the oracle.

A node's parameter table is a list of :class:`robotracer_ros.parameters.Param` (the workspace's
one parameter helper); the tables here are the entries both world nodes declare alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from robotracer_ros.parameters import Param
from robotracer_sim.oracle import OracleConfig

ParameterTable = list[Param]

RELIABILITIES = ('reliable', 'best_effort')


def image_qos_parameters(reliability_description: str) -> ParameterTable:
    """``image_reliability`` (default ``reliable``) and ``image_depth`` (default 5).

    Args:
        reliability_description: the node's description of ``image_reliability``.

    Returns:
        The two entries.

    """
    return [
        Param('image_reliability', 'reliable', reliability_description),
        Param('image_depth', 5, 'image QoS history depth', 1, 100),
    ]


OBJECT_POSE_SERVICE_PARAMETERS: ParameterTable = [
    Param('get_object_poses_service', '/sim/get_object_poses', 'GetObjectPoses service'),
    Param('set_object_pose_service', '/sim/set_object_pose', 'SetObjectPose service'),
]

ORACLE_PARAMETERS: ParameterTable = [
    Param('oracle_enabled', True, 'serve the ground-truth oracle (RoboTracer HTTP API)'),
    Param('oracle_host', '127.0.0.1', 'oracle bind address (loopback by default)'),
    Param('oracle_port', 25547, 'oracle TCP port (0: any free port)', 0, 65535),
    Param('oracle_latency', 0.5, 'oracle answer delay, s (emulates a model)', 0.0, 60.0),
    Param('oracle_noise', 0.0, 'std of Gaussian noise on trace points, m', 0.0, 1.0),
    Param('oracle_malformed_rate', 0.0, 'probability of a malformed answer', 0.0, 1.0),
    Param('oracle_seed', -1, 'oracle random seed (-1: random)', -1, 2**31 - 1),
]

#: Ways to watch a world without RViz: a MuJoCo viewer window, or PNG frames on disk.
WATCH_PARAMETERS: ParameterTable = [
    Param('viewer', False, 'open a MuJoCo viewer window (needs a display)'),
    Param('save_frames_dir', '', 'write color.png/depth.png here periodically (empty: no)'),
    Param('save_frames_period', 1.0, 'seconds between saved frames', 0.1, 3600.0),
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
