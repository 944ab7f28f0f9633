"""Shared fixtures."""

from __future__ import annotations

import pytest

from chainrule.derive.derivation import Derivation
from helpers import example


@pytest.fixture(scope="session")
def mazur() -> Derivation:
    return example("mazur")
