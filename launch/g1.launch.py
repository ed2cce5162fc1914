"""Bring up RoboTracer on the G1: `ros2 launch robotracer_ros g1.launch.py [name:=value ...]`.

The nodes, parameters (config/g1.yaml) and remappings are described once in
robotracer_ros.bringup; `robotracer launch g1` runs the same description without ros2 launch.
`ros2 launch robotracer_ros g1.launch.py --show-args` lists the arguments.
"""

from robotracer_ros.bringup import G1
from robotracer_ros.launch_support import generate


def generate_launch_description():
    return generate(G1)
