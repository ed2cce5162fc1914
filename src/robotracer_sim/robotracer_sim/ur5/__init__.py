"""The UR5 tabletop world (ROS-free).

- :mod:`~robotracer_sim.ur5.scene`: the scene file schema and loader (``load_scene``).
- :mod:`~robotracer_sim.ur5.model`: URDF -> MJCF conversion and the MuJoCo scene.
- :mod:`~robotracer_sim.ur5.world`: :class:`~robotracer_sim.ur5.world.Ur5World`.
- :mod:`~robotracer_sim.ur5.trajectory`: JTC-style trajectory interpolation.
- :mod:`~robotracer_sim.ur5.render`: one-pass offscreen RGB-D rendering (re-exports
  :mod:`robotracer_sim.common.render`).

The object schema, the MJCF helpers and the renderer are shared with the G1 room
(:mod:`robotracer_sim.common`); their names stay importable from here.
"""
