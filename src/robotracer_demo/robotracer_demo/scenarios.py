"""What the demo does, per robot, as data: the bringup to start and the instructions to run.

ROS-free. A robot's demo is a :class:`DemoSpec`: the ``robotracer launch`` bringup, the
executable that must be installed for it, and a short table of :class:`DemoInstruction`
(the sentence, the object that should move, where it should end, and an optional perturbation
that teleports the object while the robot reaches for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math


@dataclass(frozen=True)
class Perturbation:
    """Move the target while the robot is on its way to it (before the grasp).

    Attributes:
        after_s: seconds into the first EXECUTING phase at which the object is moved.
        to_xy: its new x, y in the simulator's world frame, metres (z and orientation kept).
    """

    after_s: float
    to_xy: tuple[float, float]


@dataclass(frozen=True)
class DemoInstruction:
    """One instruction of the demo and how to judge it.

    Attributes:
        text: the sentence sent to ``/robotracer/execute_instruction``.
        obj: scene name of the object the instruction moves.
        destination: scene name of the object it should end on / in.
        move: an optional perturbation during execution (the executor must replan).
        tolerance_m: largest horizontal distance between ``obj`` and ``destination`` at the end
            that counts as done, metres.
    """

    text: str
    obj: str
    destination: str
    move: Perturbation | None = None
    tolerance_m: float = 0.03


@dataclass(frozen=True)
class DemoSpec:
    """A robot's demo.

    Attributes:
        robot: the bringup name (``robotracer launch <robot>``).
        executor: (package, executable) of the robot's executor, which must be installed.
        instructions: what to run, in order.
        launch_args: extra ``name:=value`` arguments for the bringup.
        settle_s: wait after each goal before the ground truth and the "after" frame, s.
        goal_timeout_s: longest time one instruction may take, s.
    """

    robot: str
    executor: tuple[str, str]
    instructions: tuple[DemoInstruction, ...]
    launch_args: tuple[str, ...] = field(default_factory=tuple)
    settle_s: float = 1.0
    goal_timeout_s: float = 90.0


UR5_DEMO = DemoSpec(
    robot='ur5',
    executor=('trace_executor', 'ur5_executor'),
    instructions=(
        DemoInstruction(
            'put the red cube on the plate',
            'red_cube',
            'plate',
            move=Perturbation(after_s=1.0, to_xy=(0.40, -0.32)),
        ),
        DemoInstruction('put the blue cube in the bowl', 'blue_cube', 'bowl'),
        DemoInstruction('put the green cube on the red cube', 'green_cube', 'red_cube'),
    ),
)

G1_DEMO = DemoSpec(
    robot='g1',
    executor=('trace_executor', 'g1_executor'),
    instructions=(DemoInstruction('put the red cup on the plate', 'red_cup', 'plate'),),
    goal_timeout_s=180.0,
)

DEMOS: dict[str, DemoSpec] = {'ur5': UR5_DEMO, 'g1': G1_DEMO}


def horizontal_distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Distance between two points in the table plane (x, y), metres.

    Args:
        a: first point (x, y, z).
        b: second point (x, y, z).

    Returns:
        ``hypot(a.x - b.x, a.y - b.y)``.
    """
    return math.hypot(float(a[0]) - float(b[0]), float(a[1]) - float(b[1]))
