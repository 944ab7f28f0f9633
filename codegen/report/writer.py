"""``chainrule report``: the derivation as LaTeX (``NAME.tex``), with ``--pdf`` compiled, and with
``--html`` as one self-contained HTML page (``NAME.html``, math as MathML, no TeX needed).

The ``.tex`` and the ``.html`` are rendered in memory from one report context (same spec, same
bytes). The PDF is compiled in a fresh
temporary directory by ``pdflatex`` (through ``latexmk`` when it is installed, which reruns it
where needed) with shell escape off, ``openin_any=p`` and ``openout_any=p`` (TeX reads and writes
only below that directory), no rc files, a timeout, and ``SOURCE_DATE_EPOCH`` with an empty
trailer id so that the same ``.tex`` gives the same PDF. Only the ``.tex`` and the PDF are moved
into ``-o DIR``, each atomically, and only after the compile succeeded: a failing compile writes
nothing and reports the first LaTeX error with its line.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

from chainrule.derive.derivation import Derivation, derive
from chainrule.derive.errors import ChainruleError
from chainrule.derive.spec import Spec

from chainrule.codegen.files import write_atomic
from chainrule.codegen.report.latex import environment
from chainrule.codegen.report.context import TEMPLATE, ReportContext, build_report_context

#: Seconds a compile may take (each pdflatex run; latexmk runs it at most a few times).
COMPILE_TIMEOUT = 120
#: What a machine without TeX needs (Debian and Ubuntu package names).
TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-pictures"
#: The PDF's dates: SOURCE_DATE_EPOCH fixes them (pdfTeX >= 1.40.17), so the bytes repeat.
SOURCE_DATE_EPOCH = "0"


def render_report(d: Derivation, spec_path: str, params: Sequence[str] = ()) -> str:
    """The ``.tex`` of ``d`` (LF line endings, one trailing newline)."""
    return render_tex_context(build_report_context(d, spec_path, params))


def render_tex_context(context: ReportContext) -> str:
    """The ``.tex`` of a report context (LF line endings, one trailing newline)."""
    values = {f.name: getattr(context, f.name) for f in fields(context)}
    text = environment().get_template(TEMPLATE).render(**values)
    return text.rstrip("\n") + "\n"


def render_html(d: Derivation, spec_path: str, params: Sequence[str] = ()) -> str:
    """The HTML page of ``d``: the ``.tex``'s content, math as MathML, the diagram as SVG, no
    external references (UTF-8 text, LF line endings, one trailing newline).

    Raises:
        ChainruleError: bad ``params`` (as :func:`render_report`).
    """
    from chainrule.codegen.report.htmlpage import render_html_context  # the MathML printer loads only when asked for

    return render_html_context(build_report_context(d, spec_path, params))


def write_report(spec: Spec, spec_path: str, out_dir: str, pdf: bool = False, params: Sequence[str] = (), html: bool = False,
                 steps: int | None = None) -> list[Path]:
    """Write the report into ``out_dir``: ``NAME.tex``; with ``pdf`` also ``NAME.pdf``; with
    ``html`` the page ``NAME.html`` instead of the ``.tex`` (both, and the PDF, with ``pdf`` and
    ``html``). Returns the paths written, in the order written (the PDF first), printing
    nothing; when one cannot be written, none is left.

    Args:
        spec: the loaded spec.
        spec_path: the spec file as the user named it (only its file name is written).
        out_dir: the directory (created when missing).
        pdf: also compile the PDF (needs pdflatex).
        params: parameters whose chains are shown (``--param``); by default every parameter of
            a small network, the largest-gradient weight of each layer of a big one.
        html: write the self-contained HTML page (MathML, inline SVG; no TeX needed).
        steps: ``--steps N``: a table of the loss (and the first ``params``) after each of N
            optimizer steps on the sample, taken by the emitted trainer.

    Raises:
        ChainruleError: bad ``--param`` names; ``out_dir`` is not a directory; no TeX (with
            ``pdf``); the compile fails or times out (its first error); a file cannot be written.
    """
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise ChainruleError(out_dir, "-o", "expected a directory")
    if pdf:
        compiler()  # before any work: a machine without TeX hears it at once
    d = derive(spec, params)
    trained = None
    if steps is not None:
        from chainrule.codegen.steps import follow_steps  # the trainer loads only when asked for

        trained = follow_steps(d, steps, spec_path)
    context = build_report_context(d, spec_path, params, trained)
    pages: list[tuple[Path, str]] = []
    if html:
        from chainrule.codegen.report.htmlpage import render_html_context  # the MathML printer loads only when asked for

        pages.append((directory / f"{spec.name}.html", render_html_context(context)))
    text = render_tex_context(context) if pdf or not html else None
    if text is not None:
        pages.append((directory / f"{spec.name}.tex", text))
    written = []
    with tempfile.TemporaryDirectory(prefix="chainrule-report-") as work:
        pdf_file = compile_pdf(text, spec.name, Path(work)) if pdf and text is not None else None
        # The PDF first: when it cannot be written, no .tex is left without it.
        outputs = [(directory / f"{spec.name}.pdf", pdf_file.read_bytes())] if pdf_file is not None else []
        try:
            for path, content in [*outputs, *pages]:
                write_atomic(path, content)
                written.append(path)
        except OSError as error:
            for path in written:
                path.unlink(missing_ok=True)
            raise ChainruleError(str(directory), "-o", f"cannot write: {error.strerror or error}") from None
    return written


def write_html(spec: Spec, spec_path: str, out_dir: str, params: Sequence[str] = ()) -> Path:
    """``chainrule report --html``: write ``out_dir/NAME.html``, the report as one
    self-contained page (math as MathML, the diagram as SVG, no network access and no TeX
    needed to make or read it); returns the path, printing nothing.

    Raises:
        ChainruleError: as :func:`write_report` (bad ``params``, ``out_dir`` not a directory, a
            file that cannot be written).
    """
    return write_report(spec, spec_path, out_dir, params=params, html=True)[0]


# ---------------------------------------------------------------------------------------------
# Compiling


@dataclass(frozen=True)
class Compiler:
    """The command that turns ``NAME.tex`` into ``NAME.pdf`` in the current directory."""

    argv: tuple[str, ...]
    reruns: bool  # True when the tool itself reruns pdflatex as needed (latexmk)


def compiler() -> Compiler:
    """latexmk when installed, else pdflatex; both with shell escape off and stopping at the
    first error.

    Raises:
        ChainruleError: no pdflatex on the PATH (naming the packages to install).
    """
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        raise ChainruleError("pdflatex", "--pdf", f"not found: install TeX (Debian/Ubuntu: apt-get install {TEX_PACKAGES}) or leave out --pdf")
    flags = ("-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "-file-line-error")
    latexmk = shutil.which("latexmk")
    if latexmk is not None:
        command = " ".join((pdflatex,) + flags + ("%O", "%S"))
        return Compiler((latexmk, "-norc", "-pdf", "-quiet", f"-pdflatex={command}"), reruns=True)
    return Compiler((pdflatex,) + flags, reruns=False)


def tex_environment() -> dict[str, str]:
    """The environment TeX runs in: no shell escape, reads and writes only below the working
    directory (kpathsea's paranoid mode), fixed dates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXMF", "TEXINPUTS", "TEXFORMATS", "openin", "openout", "shell_escape"))}
    env.update(openin_any="p", openout_any="p", shell_escape="f", SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, FORCE_SOURCE_DATE="1")
    return env


def compile_pdf(text: str, name: str, work: Path) -> Path:
    """Compile ``text`` as ``work/NAME.tex``; returns the PDF's path inside ``work``.

    Raises:
        ChainruleError: the compile failed (its first error and line) or timed out.
    """
    tool = compiler()
    source = work / f"{name}.tex"
    source.write_text(text, encoding="utf-8", newline="\n")
    runs = 1 if tool.reruns else 2
    for _ in range(runs):
        log = _run(tool.argv + (source.name,), work, name)
        if tool.reruns or not re.search(r"Rerun to get|Label\(s\) may have changed", log):
            break
    pdf = work / f"{name}.pdf"
    if not pdf.is_file():
        raise ChainruleError(f"{name}.tex", "--pdf", "pdflatex wrote no PDF")
    return pdf


def _run(argv: tuple[str, ...], work: Path, name: str) -> str:
    """Run one compile; returns the log text.

    Raises:
        ChainruleError: a non-zero exit (the first error of the log) or the timeout.
    """
    try:
        process = subprocess.Popen(argv, cwd=work, env=tex_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as error:
        raise ChainruleError(argv[0], "--pdf", f"cannot run: {error.strerror or error}") from None
    try:
        output, _ = process.communicate(timeout=COMPILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: latexmk and its pdflatex
        process.communicate()
        raise ChainruleError(f"{name}.tex", "--pdf", f"pdflatex took more than {COMPILE_TIMEOUT} s; stopped") from None
    log_file = work / f"{name}.log"
    log = log_file.read_text(encoding="utf-8", errors="replace") if log_file.is_file() else output.decode("utf-8", "replace")
    if process.returncode != 0:
        raise ChainruleError(f"{name}.tex", "--pdf", f"pdflatex failed: {first_error(log)}")
    return log


def first_error(log: str) -> str:
    """The first LaTeX error of ``log`` on one line: its message and the line it happened on."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(?:\./)?[^:\s]*\.tex:(\d+): (.*)$", line) or re.match(r"^! (.*)$", line)
        if match is None:
            continue
        message = match.group(match.lastindex or 1).strip()
        place = f"line {match.group(1)}" if match.lastindex == 2 else ""
        context = next((l.strip() for l in lines[i + 1 : i + 8] if re.match(r"^l\.\d+ ", l)), "")
        if context and not place:
            place = "line " + context.split()[0][2:]
        detail = f" near {context.split(' ', 1)[1].strip()!r}" if " " in context else ""
        return f"{message} ({place}{detail})" if place else message
    tail = [l for l in lines if l.strip()][-1:] or ["no log"]
    return f"no error line in the log; it ends: {tail[0].strip()[:200]}"
