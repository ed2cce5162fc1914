"""Turn a :class:`robotracer_ros.bringup.Bringup` into a ``ros2 launch`` description.

Imported only by ``launch/*.launch.py`` on a ROS 2 install (``launch``/``launch_ros`` are not on
PyPI). The nodes, parameters and remappings come from :mod:`robotracer_ros.bringup`, the same
description ``robotracer launch`` runs, and the ``--ros-args`` are built by the same function,
so the two runners cannot drift apart.
"""

from __future__ import annotations

import os

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from robotracer_ros.bringup import Bringup, namespace_params_files, ros_args


def _nodes(context, bringup: Bringup) -> list:  # noqa: ANN001
    given = {a.name: LaunchConfiguration(a.name).perform(context) for a in bringup.args}
    values = bringup.resolve(given)  # raises a clear ValueError for bad arguments
    share = FindPackageShare('robotracer_ros').perform(context)
    params = values['config'] or os.path.join(share, 'config', bringup.config_file)
    actions = []
    for inc in bringup.includes(values):  # e.g. MoveIt's move_group for robot_backend:=moveit
        try:
            inc_share = FindPackageShare(inc.package).perform(context)
        except Exception as exc:  # noqa: BLE001 - PackageNotFoundError
            raise RuntimeError(
                f'{inc.package} is not installed: robot_backend:=moveit needs MoveIt and the UR '
                'MoveIt configuration, or launch_move_group:=false when move_group runs elsewhere'
            ) from exc
        include = IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(inc_share, 'launch', inc.launch_file)),
            launch_arguments=dict(inc.arguments).items(),
        )
        group = [PushRosNamespace(values['namespace'])] if values['namespace'] else []
        actions.append(GroupAction([*group, include]))
    for spec in bringup.nodes(values):
        argv = [
            a.replace('$(share robotracer_ros)', share) for a in ros_args(spec, values, params)
        ]
        argv = namespace_params_files(argv, values['namespace'])
        split = argv.index('--ros-args')
        actions.append(
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                arguments=argv[:split],
                ros_arguments=argv[split + 1 :],
                output='screen',
                emulate_tty=True,
            )
        )
    return actions


def generate(bringup: Bringup) -> LaunchDescription:
    """The launch description of ``bringup``: its arguments, then its nodes."""
    decl = [
        DeclareLaunchArgument(
            a.name,
            **({} if a.default is None else {'default_value': a.default}),
            description=a.description,
            **({'choices': list(a.choices)} if a.choices else {}),
        )
        for a in bringup.args
    ]
    return LaunchDescription([*decl, OpaqueFunction(function=_nodes, args=[bringup])])
