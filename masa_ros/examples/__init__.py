"""Example consumers of the tracker node's messages (nothing in masa_ros or masa_core imports them)."""
