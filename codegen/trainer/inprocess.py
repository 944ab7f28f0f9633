"""The emitted trainer of a derivation, imported in this process without writing a file.

The module is the one ``chainrule emit`` writes (the same source, rendered by
:func:`~chainrule.codegen.trainer.context.render_trainer`), imported by Python's own import
machinery from memory (an :class:`importlib.abc.InspectLoader` holding the source, so that
tracebacks and ``inspect`` show its lines). It is not registered in ``sys.modules``: nothing is
written, and its ``main`` never runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import types

from chainrule.derive.derivation import Derivation

from chainrule.codegen.trainer.context import render_trainer


class _InMemory(importlib.abc.InspectLoader):
    """A loader of one module whose source is a string."""

    def __init__(self, source: str, filename: str) -> None:
        self.source, self.filename = source, filename

    def get_code(self, fullname: str) -> types.CodeType:
        """The code, named by ``filename`` (where tracebacks and ``inspect`` find its lines)."""
        return self.source_to_code(self.source, self.filename)

    def get_source(self, fullname: str) -> str:
        return self.source

    def is_package(self, fullname: str) -> bool:
        return False


def trainer_module(d: Derivation, spec_path: str = ".") -> types.ModuleType:
    """The emitted trainer module of ``d`` (its ``Network`` class, ``load_data``, ...).

    ``spec_path`` is where the spec was read from: a data file the spec names is found relative
    to it, as the written trainer finds it relative to itself.
    """
    name = d.network.spec.name
    # no <angle brackets>: linecache asks the loader for the lines of a name that is no file
    loader = _InMemory(render_trainer(d, spec_path, "."), f"chainrule trainer of {name} (in memory)")
    spec = importlib.util.spec_from_loader(f"chainrule_trainer_{name}", loader, origin=loader.filename)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
