"""The report as one self-contained HTML page: ``report.html.j2`` laid out from the same context as
the ``.tex`` (:func:`~chainrule.codegen.report.context.build_report_context`), math as MathML
(:mod:`~chainrule.codegen.report.mathml`), the diagram as inline SVG
(:mod:`~chainrule.codegen.report.svg`), styles inline; nothing is fetched (no scripts, fonts or
style sheets from elsewhere), and no TeX is needed to make or read it.

The template environment escapes every plain string (``autoescape``); math and prose of
:mod:`~chainrule.codegen.report.document` are printed as markup by their own printers, which
escape the text they hold.
"""

from __future__ import annotations

import functools
from dataclasses import fields

import jinja2
from markupsafe import Markup

from chainrule.codegen.report.context import ReportContext
from chainrule.codegen.report.document import Math, Prose
from chainrule.codegen.report.equations import Row
from chainrule.codegen.report.svg import diagram_svg

TEMPLATE = "report.html.j2"


def _value(value: object) -> object:
    """Math and prose as markup; everything else as it is (autoescape escapes strings)."""
    if isinstance(value, Math):
        return Markup(f"<math>{value.mathml()}</math>")
    if isinstance(value, Prose):
        return Markup(value.html())
    return value


def _math(value: Math) -> Markup:
    """A display's left side: fractions full size, as in the PDF's ``align*``."""
    return Markup(f'<math displaystyle="true">{value.mathml()}</math>')


def _rhs(row: Row) -> Markup:
    """A row's relation and right side, as one formula."""
    return Markup(f'<math displaystyle="true">{row.rel.mathml()}{row.rhs.mathml()}</math>')


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates from ``codegen/report/templates``, autoescaped, undefined names errors."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chainrule.codegen.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_value,
    )
    env.filters["math"] = _math
    env.filters["rhs"] = _rhs
    return env


def render_html_context(context: ReportContext) -> str:
    """The page of a report context (LF line endings, one trailing newline)."""
    values = {f.name: getattr(context, f.name) for f in fields(context)}
    values["diagram_svg"] = Markup(diagram_svg(context.diagram))
    text = environment().get_template(TEMPLATE).render(**values)
    return text.rstrip("\n") + "\n"
