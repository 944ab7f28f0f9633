"""Free text (a description, a file name) as LaTeX that prints it, in the report's fonts.

The report is set in Computer Modern: pdflatex's default OT1 text fonts and the math fonts, all
Type 1 in the TeX packages chainrule asks for (texlive-latex-base and -recommended). So a
character beyond ASCII is typeset where those fonts have it: quotes and dashes, accented Latin
letters (an accent command on an ASCII letter), ß æ œ ø ł, and µ ° ± × § † Greek letters, arrows
and relations from the math fonts. T1 and textcomp are not used: without the cm-super or lmodern
fonts (not among those packages) pdflatex draws their glyphs as bitmaps made at compile time, and
pdftotext cannot read them back (“ ” lost, ß read as ÿ). The rest is folded (``ﬁ`` as ``fi``,
``ð`` as ``d``), and what cannot be folded is written ``?``.

What this module writes is ASCII: a user's character reaches TeX as itself only when it is a
letter, a digit, a space or the plain punctuation of :data:`_PLAIN`; everything else is a command
from the tables below, and no ``^`` is written but in the accent command ``\\^{`` (TeX reads
``^^5c`` as a backslash).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Mapping

#: Characters TeX reads specially, written as the glyph they stand for. A text ``\\$`` is a
#: textcomp (bitmap) glyph since LaTeX 2020; the math one is not.
_SPECIALS: Mapping[str, str] = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\ensuremath{\$}", "&": r"\&", "%": r"\%",
    "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''", "`": "'",
}
_PLAIN = re.compile(r"[A-Za-z0-9 .,;:!?()\[\]/'+=*@-]")

#: Text characters of the OT1 fonts.
_TEXT: Mapping[str, str] = {
    "“": r"\textquotedblleft{}", "”": r"\textquotedblright{}", "‘": r"\textquoteleft{}", "’": r"\textquoteright{}",
    "«": r"\textquotedblleft{}", "»": r"\textquotedblright{}", "‹": r"\textquoteleft{}", "›": r"\textquoteright{}",
    "‚": ",", "„": ",,", "−": r"\ensuremath{-}", "–": r"\textendash{}", "—": r"\textemdash{}", "―": r"\textemdash{}", "‐": "-", "‑": "-", "‒": "-",
    "…": r"\dots{}", "¡": r"\textexclamdown{}", "¿": r"\textquestiondown{}", "⁄": "/",
    "ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "œ": r"\oe{}", "Œ": r"\OE{}", "ø": r"\o{}", "Ø": r"\O{}",
    "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "ȷ": r"\j{}",
    "¹": r"\textsuperscript{1}", "²": r"\textsuperscript{2}", "³": r"\textsuperscript{3}", "°": r"\textsuperscript{\ensuremath{\circ}}",
}
#: Symbols of the math fonts, by their command (written ``\ensuremath{\command}``).
_MATH: Mapping[str, str] = {
    "µ": "mu", "±": "pm", "×": "times", "÷": "div", "·": "cdot", "¬": "neg", "§": "S", "¶": "P", "†": "dagger",
    "‡": "ddagger", "•": "bullet", "£": "mathsterling", "′": "prime", "∗": "ast", "⋅": "cdot",
    "←": "leftarrow", "→": "rightarrow", "↑": "uparrow", "↓": "downarrow", "↔": "leftrightarrow",
    "⇐": "Leftarrow", "⇒": "Rightarrow", "⇔": "Leftrightarrow", "↦": "mapsto",
    "≤": "leq", "≥": "geq", "≠": "neq", "≈": "approx", "≡": "equiv", "∼": "sim", "∝": "propto", "≪": "ll", "≫": "gg",
    "∞": "infty", "∑": "sum", "∏": "prod", "∫": "int", "∂": "partial", "∇": "nabla", "√": "surd",
    "∈": "in", "∉": "notin", "⊂": "subset", "⊆": "subseteq", "∪": "cup", "∩": "cap", "∅": "emptyset",
    "∀": "forall", "∃": "exists", "∧": "wedge", "∨": "vee", "⊙": "odot", "⊗": "otimes", "⊕": "oplus", "∘": "circ",
    "ℝ": r"mathbb{R}", "ℕ": r"mathbb{N}", "ℤ": r"mathbb{Z}", "ℚ": r"mathbb{Q}", "ℂ": r"mathbb{C}",
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "varepsilon", "ϵ": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "ϑ": "vartheta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi",
    "π": "pi", "ϖ": "varpi", "ρ": "rho", "ϱ": "varrho", "σ": "sigma", "ς": "varsigma", "τ": "tau", "υ": "upsilon",
    "φ": "varphi", "ϕ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
    "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi", "Σ": "Sigma", "Υ": "Upsilon",
    "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}
#: Letters the fonts do not have, folded to the ASCII a reader would write for them.
_FOLDS: Mapping[str, str] = {
    "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ŋ": "ng", "Ŋ": "Ng",
    "ο": "o", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Χ": "X",
}
#: Combining accents the OT1 fonts set over (or under) a letter, by their command.
_ACCENTS: Mapping[str, str] = {
    "\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=", "\u0306": "u", "\u0307": ".",
    "\u0308": '"', "\u030a": "r", "\u030b": "H", "\u030c": "v", "\u0323": "d", "\u0327": "c", "\u0331": "b",
}
#: Accents set above the letter: on i and j they take the dotless forms.
_ABOVE = frozenset("`'^~=u.\"rHv")
#: In typewriter type (\\texttt, a file name) the OT1 font holds other glyphs in some of those
#: places (the en-dash's is ``{``, the opening double quote's ``\\``, the stroke of ł a visible
#: space, the Hungarian umlaut's ``}``): there they are written in ASCII or another accent.
_TYPEWRITER: Mapping[str, str] = {
    "–": "-", "—": "--", "―": "--", "“": "''", "”": "''", "«": "''", "»": "''", "ł": "l", "Ł": "L",
}
_TYPEWRITER_ACCENTS: Mapping[str, str] = {"H": '"'}


def text_tex(text: str, typewriter: bool = False) -> str:
    """``text`` as ASCII LaTeX that prints it (see the module docstring), in roman or (with
    ``typewriter``) in typewriter type; white space as spaces, invisible format and control
    characters left out."""
    return "".join(_char(char, True, typewriter) for char in unicodedata.normalize("NFC", text))


def _char(char: str, fold: bool, typewriter: bool) -> str:
    if typewriter and char in _TYPEWRITER:
        return _TYPEWRITER[char]
    if char in _SPECIALS:
        return _SPECIALS[char]
    if _PLAIN.fullmatch(char):
        return char
    if char in _TEXT:
        return _TEXT[char]
    if char in _MATH:
        return rf"\ensuremath{{\{_MATH[char]}}}"
    if char.isspace():
        return " "
    if unicodedata.category(char) in ("Cc", "Cf", "Mn"):
        return ""  # controls, zero-width and direction marks, a lone accent: nothing to print
    accented = _accented(char, typewriter)
    if accented is not None:
        return accented
    if char in _FOLDS:
        return _FOLDS[char]
    compatible = unicodedata.normalize("NFKD", char)
    if fold and compatible != char:
        return "".join(_char(c, False, typewriter) for c in unicodedata.normalize("NFC", compatible))
    return "?"


def _accented(char: str, typewriter: bool) -> str | None:
    """A letter with accents as accent commands on its base (``é`` as ``\\'{e}``), or None
    when it is not one; accents the fonts lack are left out (``ą`` as ``a``)."""
    decomposed = unicodedata.normalize("NFD", char)
    base, marks = decomposed[0], decomposed[1:]
    if not marks or not (base.isascii() and base.isalpha()) and base not in _FOLDS:
        if marks and base in _MATH:
            return _char(base, False, typewriter)  # Greek with a tonos: the letter
        return None
    out = _FOLDS.get(base, base)
    commands = [_ACCENTS[m] for m in marks if m in _ACCENTS]
    if typewriter:
        commands = [_TYPEWRITER_ACCENTS.get(c, c) for c in commands]
    if commands and commands[0] in _ABOVE and out in ("i", "j"):
        out = rf"\{out}"
    for command in commands:
        out = rf"\{command}{{{out}}}"
    return out
