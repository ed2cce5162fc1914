"""RoboTracer ROS 2 — execution side.

The library modules are ROS-free (numpy in, numpy out): ``errors`` (error codes shared with the
``ExecuteInstruction`` action) and ``ur5`` (trace → safe, timed UR5 motion). Node modules, when
they exist, live in ``nodes/`` and only convert messages and wire callbacks.
"""

__version__ = '0.1.0'
