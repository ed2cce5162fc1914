"""A stand-in for ``moveit_configs_utils`` (MoveIt 2 Jazzy) loading ``ur_moveit_config`` (Jazzy).

Neither is installable here. :func:`module` returns a module with a ``MoveItConfigsBuilder``
that behaves as Jazzy's does for the calls ur_moveit_config's ``ur_moveit.launch.py`` makes
(``MoveItConfigsBuilder(robot_name='ur', package_name='ur_moveit_config')
.robot_description_semantic(Path('srdf') / 'ur.srdf.xacro', {'name': ur_type}).to_dict()``):

- a missing package raises ament_index_python's ``PackageNotFoundError`` from the constructor;
- ``to_dict()`` is flat, with ``planning_pipelines`` a *list* of names (the builder's form,
  not MoveItCpp's ``planning_pipelines.pipeline_names``), ``default_planning_pipeline``, one
  block per pipeline (ur_moveit_config has ompl, chomp and pilz_industrial_motion_planner), the
  controllers of moveit_controllers.yaml, Pilz's Cartesian limits in
  ``robot_description_planning``, and no ``robot_description`` (read from the driver's topic);
- the SRDF is the xacro output for the ``name`` mapping (the ur_type).
"""

from __future__ import annotations

from pathlib import Path
import types
from typing import Any


class PackageNotFoundError(KeyError):
    """ament_index_python.packages.PackageNotFoundError."""


def module(*, installed: bool = True) -> types.ModuleType:
    """A ``moveit_configs_utils`` module; ``installed=False``: ur_moveit_config is missing."""

    class MoveItConfigsBuilder:
        calls: list[tuple[str, Any]] = []

        def __init__(
            self,
            robot_name: str,
            robot_description: str = 'robot_description',
            package_name: str | None = None,
        ) -> None:
            package = package_name or f'{robot_name}_moveit_config'
            MoveItConfigsBuilder.calls.append(('init', (robot_name, package)))
            if not installed or package != 'ur_moveit_config':
                raise PackageNotFoundError(
                    f"\"package '{package}' not found, searching: ['/opt/ros/jazzy']\""
                )
            self._srdf = ''

        def robot_description_semantic(
            self, file_path: str | Path | None = None, mappings: dict[str, str] | None = None
        ) -> MoveItConfigsBuilder:
            MoveItConfigsBuilder.calls.append(('srdf', (str(file_path), dict(mappings or {}))))
            name = (mappings or {}).get('name', 'ur')
            self._srdf = (
                f'<?xml version="1.0" ?>\n<robot name="{name}">\n'
                '  <group name="ur_manipulator"><chain base_link="base_link" tip_link="tool0"/>'
                '</group>\n</robot>\n'
            )
            return self

        def to_dict(self, include_moveit_configs: bool = True) -> dict[str, Any]:
            return {
                'robot_description_semantic': self._srdf,
                'robot_description_kinematics': {
                    'ur_manipulator': {
                        'kinematics_solver': 'kdl_kinematics_plugin/KDLKinematicsPlugin',
                        'kinematics_solver_search_resolution': 0.005,
                        'kinematics_solver_timeout': 0.005,
                    }
                },
                'planning_pipelines': ['ompl', 'chomp', 'pilz_industrial_motion_planner'],
                'default_planning_pipeline': 'ompl',
                'ompl': {
                    'planning_plugins': ['ompl_interface/OMPLPlanner'],
                    'ur_manipulator': {'default_planner_config': 'RRTConnectkConfigDefault'},
                },
                'chomp': {'planning_plugins': ['chomp_interface/CHOMPPlanner']},
                'pilz_industrial_motion_planner': {
                    'planning_plugins': ['pilz_industrial_motion_planner/CommandPlanner'],
                    'default_planner_config': 'PTP',
                },
                'moveit_manage_controllers': True,
                'moveit_controller_manager': (
                    'moveit_simple_controller_manager/MoveItSimpleControllerManager'
                ),
                'moveit_simple_controller_manager': {
                    'controller_names': ['scaled_joint_trajectory_controller'],
                },
                'publish_planning_scene': True,
                'robot_description_planning': {
                    'joint_limits': {'shoulder_pan_joint': {'has_velocity_limits': True}},
                    'cartesian_limits': {'max_trans_vel': 1.0, 'max_trans_acc': 2.25},
                },
            }

    mod = types.ModuleType('moveit_configs_utils')
    mod.MoveItConfigsBuilder = MoveItConfigsBuilder  # type: ignore[attr-defined]
    return mod
