"""ROS 2 nodes of robotracer_sim (thin: parameters, message conversion, callbacks)."""
