"""Scene-change watching for a camera that moves with the robot (the G1's head camera).

Design notes: docs/design-notes.md (trace_executor.g1.watcher).
"""

from __future__ import annotations

from ..plan_watcher import PlanSceneWatcher


class StanceSceneWatcher(PlanSceneWatcher):
    """A :class:`~trace_executor.execution.SceneWatcher` for a moving camera (frames in odom).

    Same arguments as :class:`~trace_executor.plan_watcher.PlanSceneWatcher`; ``robot_points``
    gives the G1's mask in odom (:meth:`trace_executor.g1.collision.G1BodyMask.at`).
    """
