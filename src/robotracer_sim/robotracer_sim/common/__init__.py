"""What the UR5 and G1 worlds share (ROS-free).

- :mod:`~robotracer_sim.common.scene_schema`: the object schema of every scene file
  (:class:`~robotracer_sim.common.scene_schema.ObjectSpec`, :data:`PALETTE`, :data:`SHAPES`),
  :class:`~robotracer_sim.common.scene_schema.SceneError` and the field validators.
- :mod:`~robotracer_sim.common.mjcf`: URDF -> MJCF conversion and caching, and the MuJoCo
  pieces both worlds build (floor, tables, objects and open containers, grasp welds).
- :mod:`~robotracer_sim.common.render`: one-pass offscreen RGB-D rendering of a model camera.
- :mod:`~robotracer_sim.common.snapshot`: an object's ground truth for the oracle.

The ROS side the two world nodes share lives in :mod:`robotracer_sim.nodes` (``messages``,
``parameters``, ``world_node``).
"""
