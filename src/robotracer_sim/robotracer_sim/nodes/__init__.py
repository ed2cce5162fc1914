"""ROS 2 nodes of robotracer_sim (thin: parameters, message conversion, callbacks).

- :mod:`~robotracer_sim.nodes.ur5_world_node`, :mod:`~robotracer_sim.nodes.g1_world_node`:
  the world nodes.
- :mod:`~robotracer_sim.nodes.world_node`: :class:`SimWorldNode`, the part of a world node
  that does not depend on the robot (camera publishing, oracle, viewer, ``main``).
- :mod:`~robotracer_sim.nodes.messages`: numpy/world state -> ROS messages.
- :mod:`~robotracer_sim.nodes.parameters`: descriptors and the parameter entries both share.
"""
