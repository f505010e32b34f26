"""One error family: every error class of masa_core and masa_ros derives from MasaError."""

from __future__ import annotations

import ast
import importlib

import pytest

from masa_core.cli import track
from masa_core.cli.eval import SequenceError
from masa_core.errors import MasaError, MissingPackageError
from tests.paths import REPO

# Not (yet) in the family, each with its reason.
OUTSIDE: set[str] = set()


def _error_classes() -> list[str]:
    names = []
    for root in ("masa_core", "masa_ros"):
        for path in sorted((REPO / root).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            tree = ast.parse(path.read_text())
            classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Error")]
            names += [f"{module}.{n.name}" for n in classes]
    return names


def test_every_error_class_is_a_masa_error():
    classes = _error_classes()
    assert len(classes) > 10
    outside = []
    for name in classes:
        module, cls = name.rsplit(".", 1)
        if not issubclass(getattr(importlib.import_module(module), cls), MasaError):
            outside.append(name)
    assert sorted(outside) == sorted(OUTSIDE)


def test_a_missing_package_is_still_an_import_error():
    assert issubclass(MissingPackageError, ImportError)


@pytest.mark.parametrize("error", [MissingPackageError("pip install it"), SequenceError("no gt")])
def test_a_cli_turns_any_masa_error_into_exit_2_and_one_line(error, monkeypatch, capsys):
    monkeypatch.setattr(track, "parse_args", lambda argv: None)
    monkeypatch.setattr(track, "run", lambda args: (_ for _ in ()).throw(error))
    assert track.main([]) == 2
    assert capsys.readouterr().err == f"masa-track: error: {error}\n"


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(track, "parse_args", lambda argv: None)
    monkeypatch.setattr(track, "run", lambda args: (_ for _ in ()).throw(KeyError("bug")))
    with pytest.raises(KeyError):
        track.main([])
