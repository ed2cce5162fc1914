"""Bring up RoboTracer on the UR5: `ros2 launch robotracer_ros ur5.launch.py [name:=value ...]`.

The nodes, parameters (config/ur5.yaml) and remappings are described once in
robotracer_ros.bringup; `robotracer launch ur5` runs the same description without ros2 launch.
`ros2 launch robotracer_ros ur5.launch.py --show-args` lists the arguments.
"""

from robotracer_ros.bringup import UR5
from robotracer_ros.launch_support import generate


def generate_launch_description():
    return generate(UR5)
