"""robotracer_sim: MuJoCo worlds that look and answer like the real robots, plus an oracle.

- :mod:`robotracer_sim.ur5`: the UR5 tabletop world (scene file, model, world).
- :mod:`robotracer_sim.g1`: the G1 humanoid room (scene file, model, world, Unitree DDS peer).
- :mod:`robotracer_sim.common`: what both worlds share (object schema and scene-file
  validators, URDF -> MJCF conversion and scene pieces, RGB-D renderer, oracle snapshots).
- :mod:`robotracer_sim.oracle`: the ground-truth model server speaking RoboTracer's HTTP API.
- :mod:`robotracer_sim.nodes`: the ROS 2 nodes (``ur5_world``, ``g1_world``) and what they
  share (``world_node``, ``messages``, ``parameters``).
- :mod:`robotracer_sim.cli`: ``robotracer sim ur5|g1``.
- :mod:`robotracer_sim.robot_data`: where example-robot-data's robots are.

The core modules do not import rclpy; only ``nodes`` and ``cli`` (when run) do.
"""

__version__ = '0.1.0'
