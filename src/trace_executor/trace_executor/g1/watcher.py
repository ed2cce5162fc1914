"""Scene-change watching for a camera that moves with the robot (the G1's head camera).

Wraps :class:`~trace_executor.scene_monitor.SceneMonitor` (regions and thresholds as on the
UR5) with the rule *compare only frames taken from the same camera pose*:

- the regions (object at the trace start until grasped, destination, path corridor) are
  spheres in odom; each depth frame comes with the camera pose at its stamp;
- the reference frame is taken when a plan is armed, with the camera pose of that frame
  (:meth:`SceneMonitor.set_camera`); a frame whose camera pose differs from the reference's
  (the robot walks, or the waist turns during a reach) is not compared;
- when the camera has been still again for ``settle_frames`` frames at a new pose (after a walk
  or a waist motion), that pose gets a new reference and watching resumes.

So changes are caught whenever the head is still; what changed *while* the robot walked is
caught by looking again after every walk (:data:`trace_executor.execution.LOOK_AGAIN`). The
robot's own arms and hands (:class:`trace_executor.g1.collision.G1BodyMask`) and the object a
hand holds are masked, in the reference and in every compared frame.

ROS-free: the node feeds frames (:meth:`StanceSceneWatcher.on_frame`). The machinery is
:class:`~trace_executor.scene_monitor.PlanSceneWatcher`, which the UR5's fixed camera shares.
"""

from __future__ import annotations

from ..scene_monitor import PlanSceneWatcher


class StanceSceneWatcher(PlanSceneWatcher):
    """A :class:`~trace_executor.execution.SceneWatcher` for a moving camera (frames in odom).

    Same arguments as :class:`~trace_executor.scene_monitor.PlanSceneWatcher`; ``robot_points``
    gives the G1's mask in odom (:meth:`trace_executor.g1.collision.G1BodyMask.at`).
    """
