"""The one family of errors a user causes and can fix: a bad setting, file, frame or missing package.

Every such error class derives from :class:`MasaError` (and keeps its builtin base, ``ValueError``,
``OSError`` ..., for callers that catch those). The CLIs and the ROS node catch ``MasaError`` alone:
exit code 2 and one line, no traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MasaError(Exception):
    """Base of every user-facing error of masa_core and masa_ros."""


class MissingPackageError(MasaError, ImportError):
    """An optional package that the chosen feature needs is not installed; the message says how to."""
