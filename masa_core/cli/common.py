"""What every command line tool shares: one-line usage errors, input checks made before a run, and
outputs written to a temporary name in their folder and moved into place only when the run succeeds."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

from masa_core.errors import MasaError


class UsageError(MasaError, ValueError):
    """A command-line input or output the user must fix; the message names it."""


def report_error(prog: str, error: MasaError) -> int:
    """Print ``prog: error: <message>`` on stderr; returns 2, the exit code of every user error."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``, exit code 2), no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def finite_float(minimum: float = 0.0, strict: bool = False):
    """argparse type: a finite float >= ``minimum`` (> with ``strict``)."""

    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number {'>' if strict else '>='} {minimum:g}")
        return value

    parse.__name__ = "number"
    return parse


def check_text_file(path: Path, what: str) -> Path:
    """``path`` if it is a readable UTF-8 text file, else :class:`UsageError` naming ``what``."""
    if not path.exists():
        raise UsageError(f"{what} {path} not found")
    if not path.is_file():
        raise UsageError(f"{what} {path} is not a file")
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not a text file") from None
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    return path


class AtomicOutput:
    """An output file written under a temporary name beside ``path`` (so it keeps the suffix tools
    choose formats by) and moved onto ``path`` by :meth:`commit`; :meth:`discard` removes it.

    Creating it checks, before any work, that ``path`` can be written: its folder is made if missing,
    and a path that is a folder, lies under a file or is not writable is a :class:`UsageError`.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise UsageError(f"{what} {self.path} is a folder, not a file")
        blocking = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise UsageError(f"cannot write {what} {self.path}: {blocking} is a file, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=self.path.suffix)
        except OSError as e:
            raise UsageError(f"cannot write {what} {self.path}: {e.strerror or e}") from None
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        """Move the finished file into place (with the permissions a new file gets); returns the final path."""
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (the final path is left as it was)."""
        self.tmp.unlink(missing_ok=True)


def check_writable_folder(path: Path, what: str) -> Path:
    """Make folder ``path`` if missing and check that files can be created in it (else UsageError)."""
    AtomicOutput(Path(path) / ".write_check", what).discard()
    return Path(path)
