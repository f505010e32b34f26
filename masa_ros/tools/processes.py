"""Child processes of the tools: where this checkout's tracker node is installed, and stopping one."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / "install" / "masa_ros" / "lib" / "masa_ros" / "tracker_node"  # scripts/setup_ros.sh builds it


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Ask a child process to end (SIGTERM); kill it if it has not within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
