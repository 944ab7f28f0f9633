"""The progress line (tqdm) on work that can take longer than about 2 s: told after each point a
check is done with, shown only on a terminal."""

from __future__ import annotations

import io

import pytest

from chainrule.codegen import progress as progress_module
from chainrule.codegen.commands import check
from chainrule.derive import derive
from chainrule.derive.check import check_derivation
from helpers import example_spec


def test_check_tells_each_point():
    told = []
    check_derivation(derive(example_spec("mazur")), random_points=3, progress=lambda done, total: told.append((done, total)))
    assert told == [(1, 4), (2, 4), (3, 4), (4, 4)]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_is_shown_on_a_terminal_only(monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    terminal = _Terminal()
    monkeypatch.setattr(progress_module.sys, "stderr", terminal)
    check(example_spec("mazur"), points=2)
    assert "check: the derivation" in terminal.getvalue()
    piped = io.StringIO()  # not a terminal: nothing
    monkeypatch.setattr(progress_module.sys, "stderr", piped)
    check(example_spec("mazur"), points=2)
    assert piped.getvalue() == ""
