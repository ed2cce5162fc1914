"""ROS 2 nodes of the execution side (thin glue over the ROS-free core)."""
