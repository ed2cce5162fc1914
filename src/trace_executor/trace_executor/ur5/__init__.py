"""ROS-free UR5 planning core: trace → validated tool path → IK → collision check → timing.

Start with :class:`Ur5Planner` (``Ur5Planner(Ur5PlannerConfig()).plan(points, q_start)``).
"""

from .config import Ur5PlannerConfig
from .kinematics import UR5_HOME, UR5_JOINT_NAMES, Ur5Kinematics
from .plan_types import GripperSegment, MotionSegment, Plan
from .planner import Ur5Planner, tool_path_distance
from .tool_path import MODES, ToolPath, top_down_rotation

__all__ = [
    'MODES',
    'UR5_HOME',
    'UR5_JOINT_NAMES',
    'GripperSegment',
    'MotionSegment',
    'Plan',
    'ToolPath',
    'Ur5Kinematics',
    'Ur5Planner',
    'Ur5PlannerConfig',
    'tool_path_distance',
    'top_down_rotation',
]
