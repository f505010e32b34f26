"""Launch the MASA tracker node: ``ros2 launch masa_ros tracker.launch.py image_topic:=/camera/image_raw``.

Arguments mirror the node's most used parameters; everything else comes from ``params_file``
(default: the package's ``config/tracker.yaml``). The Fast DDS profile that lets camera-sized
images cross processes is set for the node; camera drivers publishing to it need the same
``FASTDDS_DEFAULT_PROFILES_FILE`` (see docs/ros.md).
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "image_topic": ("/camera/image_raw", "camera image topic (sensor_msgs/Image)"),
    "params_file": (
        PathJoinSubstitution([FindPackageShare("masa_ros"), "config", "tracker.yaml"]),
        "node parameter file",
    ),
    "device": ("auto", "auto | cpu | cuda"),
    "variant": (
        "auto",
        "model variant (auto: masa_mobilesam on CUDA or with masks, masa_mnv2_lite on the CPU)",
    ),
    "backend": ("auto", "backbone + adapter runtime: auto (openvino on the CPU, tensorrt on CUDA) | torch | openvino"),
}


def generate_launch_description() -> LaunchDescription:
    profile = PathJoinSubstitution([FindPackageShare("masa_ros"), "config", "fastdds_profile.xml"])
    node = Node(
        package="masa_ros",
        executable="tracker_node",
        name="masa_tracker",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model.device": LaunchConfiguration("device"),
                "model.variant": LaunchConfiguration("variant"),
                "model.backend": LaunchConfiguration("backend"),
            },
        ],
        remappings=[("image", LaunchConfiguration("image_topic"))],
    )
    return LaunchDescription(
        [
            *(DeclareLaunchArgument(name, default_value=d, description=h) for name, (d, h) in ARGUMENTS.items()),
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile),
            node,
        ]
    )
