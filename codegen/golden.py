"""``generated/``: what chainrule emits for the example specs, rendered in memory and compared.

``python -m chainrule.codegen.golden`` (from the repository root) writes ``generated/`` again (the
trainers ``NAME.py`` and the reports ``NAME.tex`` and ``NAME.html``); the test suite renders the same files into
memory and fails with a unified diff on any difference.
Updating is always this explicit command, never a side effect of a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chainrule.derive.derivation import derive

from chainrule.codegen.files import FORMATS, load_spec, write_atomic
from chainrule.codegen.trainer.context import render_trainer

REFRESH = "python -m chainrule.codegen.golden"


def example_specs(examples: Path) -> list[Path]:
    """The example spec files, sorted by name."""
    return sorted(p for p in examples.iterdir() if p.suffix in FORMATS)


def render_generated(root: Path) -> dict[str, str]:
    """File name to text of everything ``generated/`` should hold for ``root/examples``."""
    files = {}
    for spec_path in example_specs(root / "examples"):
        spec = load_spec(str(spec_path.relative_to(root)) if spec_path.is_relative_to(root) else str(spec_path))
        relative = Path("examples") / spec_path.name
        files[f"{spec.name}.py"] = render_trainer(derive(spec), str(root / relative), str(root / "generated"))
    return files


def render_generated_reports(root: Path) -> dict[str, str]:
    """File name to text of the reports (``NAME.tex`` and the page ``NAME.html``) ``generated/``
    should hold."""
    # the report's printers load only when asked for
    from chainrule.codegen.report.context import build_report_context
    from chainrule.codegen.report.htmlpage import render_html_context
    from chainrule.codegen.report.writer import render_tex_context

    files = {}
    for spec_path in example_specs(root / "examples"):
        spec = load_spec(str(spec_path.relative_to(root)) if spec_path.is_relative_to(root) else str(spec_path))
        context = build_report_context(derive(spec), str(Path("examples") / spec_path.name))
        files[f"{spec.name}.tex"] = render_tex_context(context)
        files[f"{spec.name}.html"] = render_html_context(context)
    return files


def refresh(root: Path) -> list[Path]:
    """Write ``root/generated`` again (trainers and reports); returns the files written."""
    written = []
    for name, text in {**render_generated(root), **render_generated_reports(root)}.items():
        target = root / "generated" / name
        write_atomic(target, text)
        written.append(target)
    return written


if __name__ == "__main__":
    for path in refresh(Path.cwd()):
        print(f"wrote {path}")
    sys.exit(0)
