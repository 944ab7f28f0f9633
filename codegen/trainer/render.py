"""The trainer's templates to text: one jinja2 environment, strict about undefined names and about
what it prints (only :class:`~chainrule.codegen.trainer.pysource.Py` and numbers; see
:mod:`chainrule.codegen.trainer.pysource`). The report has its own, :func:`chainrule.codegen.report.latex.environment`."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jinja2

from chainrule.codegen.trainer import pysource
from chainrule.codegen.trainer.pysource import Py


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates from ``codegen/trainer/templates``: undefined names are errors, blocks trimmed, the final
    newline kept; text is escaped by the filters ``literal``, ``comment`` and ``docstring``, and
    every other printed string must be :class:`Py` (no HTML escaping: the trainer is Python)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chainrule.codegen.trainer", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_only_python,
    )
    env.filters.update(literal=pysource.literal, comment=pysource.comment, docstring=pysource.docstring)
    env.filters["from_macro"] = _from_macro
    return env


def _from_macro(text: str) -> Py:
    """The text a macro of these templates returned: every value printed inside the macro has
    passed :func:`_only_python` already. (For macro calls only, never for a context value.)"""
    return Py(text)


def _only_python(value: Any) -> Any:
    """Every value a trainer template prints must be :class:`Py` or a number: a plain string from
    anywhere else (a user's) could close a string or a comment and become code."""
    if isinstance(value, Py) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise TypeError(f"the trainer template printed {type(value).__name__} {value!r:.60}, expected Py (codegen/trainer/pysource.py)")


def render(template: str, context: Any) -> str:
    """``template`` filled with the fields of the frozen dataclass ``context``."""
    fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    text = environment().get_template(template).render(**fields)
    return text.rstrip("\n") + "\n"
