"""``chainrule verify SPEC CLAIMS... [--json] [--csv FILE]``: read claims files, judge, report.

One derivation and one :class:`~chainrule.derive.hand.verify.Verifier` serve every claims file, so a
class of 300 files costs little more than one. With one file, bad input is an error (exit 2);
with several, a file that cannot be read is reported on its own (stderr, its own CSV row) and the
others are still graded; exit 2 only when none could be.

Exit codes: 0 every claim right; 1 some wrong, or some file could not be graded; 2 bad input.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from chainrule.derive.hand.claims import Part, parse_claims, parse_literal
from chainrule.derive.counts import the
from chainrule.derive.derivation import derive
from chainrule.derive.documents import FORMATS, format_of
from chainrule.derive.errors import ChainruleError
from chainrule.derive.spec import Spec
from chainrule.derive.hand.shared import SHOWN_TERMS, shortened_sum
from chainrule.derive.hand.valuecheck import to_digits_written
from chainrule.derive.hand.verify import Verdict, Verifier

from chainrule.codegen.terminal.describe import number
from chainrule.codegen.files import read_text, write_atomic

RIGHT, WRONG = "\u2713", "\u2717"
CSV_COLUMNS = ("file", "claim", "of", "part", "verdict", "expected", "claimed", "diagnosis", "score")


@dataclass(frozen=True)
class FileResult:
    """One claims file: its verdicts, or the error that kept it from being graded."""

    path: str
    verdicts: tuple[Verdict, ...] = ()
    error: str = ""

    @property
    def right(self) -> int:
        return sum(v.correct for v in self.verdicts)

    @property
    def all_right(self) -> bool:
        return not self.error and self.right == len(self.verdicts)


def grade(verifier: Verifier, spec_path: str, path: str, tolerant: bool = False) -> tuple[Verdict, ...]:
    """Read, validate and judge one claims file (``tolerant``: a claim that cannot be read is an
    error for that claim only; see :meth:`Verifier.verify`).

    Raises:
        ChainruleError: unreadable, malformed, names the spec does not have, another spec.
    """
    fmt = format_of(path)
    if fmt is None:
        raise ChainruleError(path, "", f"expected a claims file ending in {', '.join(FORMATS)}")
    text = read_text(path, kind="claims file")
    claims = parse_claims(text, path, fmt, verifier.network, verifier.graph, check_spec=lambda named: _check_same_spec(path, named, spec_path))
    return verifier.verify(claims, tolerant)


def _check_same_spec(path: str, named: str, spec_path: str) -> None:
    """A claims file that names its spec must be about SPEC: the named file, relative to the claims
    file, is SPEC or a copy of it; or, when no such file is there (a class's files copied into a
    folder of their own), it has SPEC's file name. The command line's spec is the one used."""
    own = Path(path).parent / named
    try:
        if own.exists() and (os.path.samefile(own, spec_path) or own.read_bytes() == Path(spec_path).read_bytes()):
            return
    except OSError:
        pass
    if not own.exists() and Path(named).name == Path(spec_path).name:
        return
    found = "which does not exist" if not own.exists() else "a different file"
    raise ChainruleError(path, "spec", f"the claims are about {named!r} ({found}, relative to the claims file), not about {spec_path}")


def grade_files(spec: Spec, spec_path: str, claims_paths: Sequence[str]) -> tuple[FileResult, ...]:
    """Judge every claims file against ``spec`` (the file ``spec_path``), printing nothing.

    Returns:
        One result per file, in order; with several files, one that cannot be graded holds its
        error instead of verdicts.

    Raises:
        ChainruleError: the spec is bad, the only claims file is bad, or no file could be graded.
    """
    verifier = Verifier(derive(spec))
    results = []
    for path in claims_paths:
        try:
            results.append(FileResult(path, grade(verifier, spec_path, path, tolerant=len(claims_paths) > 1)))
        except ChainruleError as error:
            if len(claims_paths) == 1:
                raise
            results.append(FileResult(path, error=str(error)))
    if all(r.error for r in results):
        reasons = "; ".join(r.error for r in results)  # each error names its file
        raise ChainruleError("", "", f"none of {the(len(results), 'claims file')} could be graded: {reasons}")
    return tuple(results)


def run_verify(spec: Spec, spec_path: str, claims_paths: Sequence[str], *, as_json: bool = False, csv_path: str | None = None) -> int:
    """Judge every claims file against ``spec``; print the verdicts; write the CSV.

    Returns:
        0 when every claim is right, 1 when some are wrong or some file could not be graded.

    Raises:
        ChainruleError: as :func:`grade_files`; the CSV's folder does not exist (it is not
            made: a mistyped path writes nothing) or the CSV cannot be written.
    """
    if csv_path is not None:
        folder = Path(csv_path).parent
        if not folder.is_dir():
            raise ChainruleError(csv_path, "--csv", f"{folder} is not a directory" if folder.exists() else f"no directory {folder}")
    results = grade_files(spec, spec_path, claims_paths)
    if csv_path is not None:
        try:
            write_atomic(Path(csv_path), render_csv(results))
        except OSError as error:
            raise ChainruleError(csv_path, "--csv", f"cannot write: {error.strerror or error}") from None
    for r in results:
        if r.error:
            print(f"chainrule: error: {r.error}", file=sys.stderr)
    if as_json:
        sys.stdout.write(render_json(spec_path, results))
    elif csv_path is not None:
        sys.stdout.write(render_totals(results) + f"wrote {csv_path}\n")
    else:
        sys.stdout.write(render_text(results))
    return 0 if all(r.all_right for r in results) else 1


# ---------------------------------------------------------------------------------------------
# Rendering


def shown_expected(v: Verdict) -> str:
    """The true value (and, for a wrong value, the true value to the digits the claim wrote), or
    the true form."""
    if not isinstance(v.expected, float):
        return v.expected
    if v.correct or not v.written or v.tolerance is not None:
        return number(v.expected)
    written = to_digits_written(v.expected, parse_literal(v.written, "", ""))
    return number(v.expected) if written is None else f"{number(v.expected)} ({written} to the digits written)"


def shortened_form(form: str) -> str:
    """A long sum as derive writes a shared weight's: past 16 terms, the first 8 and a count
    (:func:`chainrule.derive.hand.shared.shortened_sum`); a shorter form or any other text as it is."""
    terms = top_level_terms(form)
    return shortened_sum(terms) if len(terms) > SHOWN_TERMS else form


def top_level_terms(form: str) -> list[str]:
    """The terms of a sum written ``a + b + c`` (a ``+`` inside parentheses stays in its term)."""
    terms, depth, start = [], 0, 0
    for i, c in enumerate(form):
        depth += (c == "(") - (c == ")")
        if depth == 0 and form.startswith(" + ", i):
            terms.append(form[start:i])
            start = i + 3
    return terms + [form[start:]]


def shown_claimed(v: Verdict) -> str:
    return v.written or str(v.claimed)


def render_text(results: Sequence[FileResult]) -> str:
    out = []
    for r in results:
        if r.error:
            out.append(f"{r.path}: not graded: {r.error}")
            continue
        out.append(f"{r.path}: {r.right} of {len(r.verdicts)} right")
        for v in r.verdicts:
            mark = RIGHT if v.correct else WRONG
            out.append(f"  {mark} {v.claim}. {v.label} ({v.part.value}): {shown_claimed(v)}")
            if not v.correct:
                expected = shown_expected(v)
                out.append(f"      expected: {shortened_form(expected)}")
                for f in v.findings:
                    out.append(f"      wrong: {f.words}")
                    if f.formula and f.formula not in f.words and f.formula != expected:  # the expected form once
                        out.append(f"        {shortened_form(f.formula)}")
            if v.note:
                out.append(f"      note: {v.note}")
    return "\n".join(out) + "\n"


def render_totals(results: Sequence[FileResult]) -> str:
    return "".join(f"{r.path}: {'not graded' if r.error else f'{r.right} of {len(r.verdicts)} right'}\n" for r in results)


def verdict_document(v: Verdict, path: str) -> dict[str, Any]:
    return {
        "file": path,
        "claim": v.claim,
        "of": v.of,
        "label": v.label,
        "kind": v.part.value,
        "verdict": "correct" if v.correct else "wrong",
        "expected": v.expected,
        "claimed": v.claimed,
        "written": v.written,
        "diagnosis": v.diagnosis,
        "findings": [{"mistake": f.mistake, "words": f.words, "formula": f.formula} for f in v.findings],
        "note": v.note,
    }


def render_json(spec_path: str, results: Sequence[FileResult]) -> str:
    """``{"claims": [...], "files": [...]}``: every judged part of every file, in file order."""
    document = {
        "spec": spec_path,
        "claims": [verdict_document(v, r.path) for r in results for v in r.verdicts],
        "files": [{"file": r.path, "right": r.right, "total": len(r.verdicts), **({"error": r.error} if r.error else {})} for r in results],
    }
    return json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text: a leading = + - @ (a formula to Excel) gets
    a ``'`` unless the cell is a plain number."""
    text = str(value)
    if text and text[0] in "=+-@\t\r" and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def render_csv(results: Sequence[FileResult]) -> str:
    """One row per file and judged part, a total row per file, an error row for a bad file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        if r.error:
            writer.writerow([cell(x) for x in (r.path, "", "", "", "error", "", "", r.error, "")])
            continue
        for v in r.verdicts:
            verdict = "correct" if v.correct else "error" if v.findings and v.findings[0].mistake == "unreadable" else "wrong"
            writer.writerow([cell(x) for x in (r.path, v.claim, v.of, v.part.value, verdict, shown_expected(v), shown_claimed(v), v.diagnosis or v.note, int(v.correct))])
        writer.writerow([cell(x) for x in (r.path, "total", "", "", "", "", "", "", f"{r.right}/{len(r.verdicts)}")])
    return buffer.getvalue()


__all__ = ["run_verify", "grade", "render_text", "render_json", "render_csv", "FileResult", "Part"]
