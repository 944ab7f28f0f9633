"""Templates to text: one jinja2 environment, strict about undefined names, for every template."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jinja2


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates from ``codegen/templates``: undefined names are errors, blocks trimmed, the final
    newline kept, nothing escaped (the trainer is Python, not HTML)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("chainrule.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, context: Any) -> str:
    """``template`` filled with the fields of the frozen dataclass ``context``."""
    fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    text = environment().get_template(template).render(**fields)
    return text.rstrip("\n") + "\n"
