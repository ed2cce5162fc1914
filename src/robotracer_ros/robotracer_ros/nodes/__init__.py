"""Thin rclpy nodes: parameters, message conversion and callbacks around the ROS-free core."""
