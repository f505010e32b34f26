"""MASA open-world multi-object tracking: the ROS-free core library."""
