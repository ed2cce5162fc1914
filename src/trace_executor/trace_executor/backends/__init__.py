"""Robot backends of the UR5 executor: ``ros2_control``, ``moveit``, ``rtde``.

Each implements :class:`trace_executor.execution.RobotBackend`. ``make_ur5_backend`` picks one
by name and fails with a clear message when it cannot run here.
"""
