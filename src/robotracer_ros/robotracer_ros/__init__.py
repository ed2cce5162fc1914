"""RoboTracer ROS 2 — perception side.

The library modules (everything outside ``nodes/``) are ROS-free: numpy in, numpy out.
The ``nodes`` package holds the thin rclpy glue, and ``cli`` the ``robotracer`` command.
"""

__version__ = '0.1.0'
