"""Launch the MASA tracker node: ``ros2 launch masa_ros tracker.launch.py image_topic:=/camera/image_raw``.

Arguments mirror the node's most used parameters; everything else comes from ``params_file``
(default: the package's ``config/tracker.yaml``). The Fast DDS profile that lets camera-sized
images cross processes is set for the node; camera drivers publishing to it need the same
``FASTDDS_DEFAULT_PROFILES_FILE`` (see docs/ros.md).

The node is a managed (lifecycle) node. By default it configures and activates itself
(``autostart:=true``). With ``autostart:=false`` this launch file is its lifecycle manager: it asks
for ``configure`` and, once the node is inactive, ``activate``. A failed configure (a bad parameter,
a model that does not load) leaves the node up and unconfigured: fix the parameter with
``ros2 param set`` and retry with ``ros2 lifecycle set /masa_tracker configure``.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import UnlessCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

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
    "autostart": ("true", "configure and activate at start; false: this launch file drives the transitions"),
}


def generate_launch_description() -> LaunchDescription:
    profile = PathJoinSubstitution([FindPackageShare("masa_ros"), "config", "fastdds_profile.xml"])
    node = LifecycleNode(
        package="masa_ros",
        executable="tracker_node",
        name="masa_tracker",
        namespace="",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "model.device": LaunchConfiguration("device"),
                "model.variant": LaunchConfiguration("variant"),
                "model.backend": LaunchConfiguration("backend"),
                "autostart": LaunchConfiguration("autostart"),
            },
        ],
        remappings=[("image", LaunchConfiguration("image_topic"))],
    )
    managed = UnlessCondition(LaunchConfiguration("autostart"))
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE),
        condition=managed,
    )
    activate_once_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[
                EmitEvent(
                    event=ChangeState(
                        lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_ACTIVATE
                    )
                )
            ],
        ),
        condition=managed,
    )
    return LaunchDescription(
        [
            *(DeclareLaunchArgument(name, default_value=d, description=h) for name, (d, h) in ARGUMENTS.items()),
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile),
            activate_once_configured,
            node,
            configure,
        ]
    )
