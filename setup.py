"""pip install for the ROS-free ``masa_core`` library and the pure-Python parts of ``masa_ros``."""

from setuptools import find_packages, setup

setup(
    name="masa_ros",
    version="0.1.0",
    description="MASA (Matching Anything by Segmenting Anything) open-world tracking for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["masa_core", "masa_core.*", "masa_ros", "masa_ros.*"]),
    package_data={"masa_core": ["py.typed", "weights/*.pt"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.26",
        "opencv-python-headless>=4.8,<5",
        "pyyaml>=6",
        "tqdm>=4.66",
        "scipy>=1.11",
        "segment-anything>=1.0",
        "mobilesam-mirror>=1.0",
        "timm>=0.9",
    ],
    extras_require={
        "detector": ["ai-edge-litert>=2.3"],
        "eval": ["trackeval>=1.3", "motmetrics>=1.4", "tabulate>=0.9", "matplotlib>=3.7"],
        "yolo": ["ultralytics"],
        "gdino": ["transformers>=4.40"],
        "test": ["pytest"],
    },
    entry_points={
        "console_scripts": [
            "masa-track=masa_core.cli.track:main",
            "masa-train=masa_core.cli.train:main",
            "masa-eval=masa_core.cli.eval:main",
            # these need ROS 2 (rclpy and the built masa_ros messages): see docs/ros.md
            "masa-ros-replay=masa_ros.tools.replay:main",
            "masa-ros-record=masa_ros.tools.record:main",
            "masa-ros-eval=masa_ros.tools.eval_bag:main",
            "masa-ros-track-markers=masa_ros.examples.track_markers:main",  # also visualization_msgs
        ]
    },
)
