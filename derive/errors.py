"""The one error type users see, and how it reads.

Every error chainrule raises for bad input is a :class:`ChainruleError`, whose message fits on one
line and names the file, the field path and what was expected. The command line prints it and
exits 2; nothing else is caught.
"""

from __future__ import annotations

import linecache
import sys
from pathlib import Path
from typing import Any

MAX_SHOWN = 60
#: The folders of chainrule's own code (derive/, codegen/ and chainrule/, installed or in a source
#: tree): their frames are left out of what a notebook shows for a ChainruleError.
_HERE = Path(__file__).resolve().parent
_PACKAGES = (_HERE, _HERE.parent / "codegen", _HERE.parent / "chainrule" if (_HERE.parent / "chainrule").is_dir() else _HERE.parent)


def shown(value: Any) -> str:
    """A short, one-line rendering of a user value for an error message."""
    text = repr(value).replace("\n", "\\n")
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class ChainruleError(ValueError):
    """Bad input: a spec, a formula, a claim or a command line that cannot be used.

    A :class:`ValueError`, so that code catching bad values catches it; its ``str`` is the one
    line the command line prints after ``chainrule: error:``.

    Args:
        source: the file (or ``<string>``) the input came from.
        field: the dotted field path inside it (``layers[1].activation``), or ``""``.
        message: what was expected and what was found.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        text = ": ".join(parts + [self.message])
        return text.replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever a file is called

    def _render_traceback_(self) -> list[str]:
        """What IPython (Jupyter) shows for this error, by IPython's hook for exceptions that
        render themselves: the caller's own frames (cells and their functions; not chainrule's
        nor those IPython hides) and the one-line message."""
        lines = []
        tb = self.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if not tb.tb_frame.f_locals.get("__tracebackhide__") and not _ours(code.co_filename):
                place = _cell_name(code.co_filename) or f'File "{code.co_filename}"'
                lines.append(f"  {place}, line {tb.tb_lineno}, in {code.co_name}")
                source = linecache.getline(code.co_filename, tb.tb_lineno).strip()
                if source:
                    lines.append(f"    {source}")
            tb = tb.tb_next
        head = ["Traceback (most recent call last):"] if lines else []
        return head + lines + [f"{type(self).__name__}: {self}"]


class SpecError(ChainruleError):
    """The network spec is invalid."""


class FormulaError(ChainruleError):
    """A formula (activation, loss or claim) cannot be parsed or is not allowed."""

    def __init__(self, source: str, field: str, message: str, text: str = "", column: int | None = None) -> None:
        if column is not None:
            message = f"{message} at column {column + 1} of {shown(text)}"
        super().__init__(source, field, message)
        self.column = column


def _ours(filename: str) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return any(path.is_relative_to(folder) for folder in _PACKAGES)


def _cell_name(filename: str) -> str | None:
    """IPython's name of a notebook cell's code ("Cell In[3]"), or None."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    try:
        name = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # an IPython without the method: its frames show by file name
        return None
    return " ".join(name) if name else None
