"""The ``chainrule`` command: parse arguments, call one library function, map errors to exit 2.

Exit codes: 0 success (``check``: the derivation, and the emitted trainer if named, agree with
finite differences; ``verify``: every claim is right), 1 ``check`` found a disagreement or
``verify`` a wrong claim, 2 bad input or usage (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Sequence

from chainrule.derive.derivation import derive
from chainrule.derive.errors import ChainruleError

from chainrule.codegen.commands import FormulasLeftOut, check, emit
from chainrule.codegen.files import load_spec
from chainrule.codegen.terminal.jsonout import render_json
from chainrule.codegen.terminal.text import render_check, render_derivation, render_steps
from chainrule.codegen.version import package_version

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ChainruleError("", "", f"{message} (see chainrule --help)")


class _TopParser(_Parser):
    """The ``chainrule`` parser: its help ends with every activation, loss, optimizer and layer
    kind, one example each (read from the registries when the help is asked for)."""

    def format_help(self) -> str:
        from chainrule.codegen.starter import help_lists

        return super().format_help() + "\n" + help_lists() + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = _TopParser(prog="chainrule", description="Derive, explain and check backpropagation for a network spec.", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"chainrule {package_version()}", help="print chainrule's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    derive_cmd = commands.add_parser("derive", allow_abbrev=False, help="the derivation: forward pass, chain-rule factors, closed forms, updates")
    derive_cmd.add_argument("spec", help="the network spec (.yaml, .yml, .toml or .json)")
    derive_cmd.add_argument("--param", action="append", default=[], metavar="NAME", help="only this parameter's chain (repeatable); for big networks, the parameters to expand")
    derive_cmd.add_argument("--json", action="store_true", help="print the derivation as JSON")
    derive_cmd.add_argument("--steps", type=int, default=None, metavar="N", help="also take N optimizer steps on the sample with the emitted trainer: the loss and parameters after each (with --param, those parameters' columns)")
    emit_cmd = commands.add_parser("emit", allow_abbrev=False, help="write the standalone NumPy trainer DIR/NAME.py")
    emit_cmd.add_argument("spec", help="the network spec")
    emit_cmd.add_argument("-o", "--output", default=".", metavar="DIR", help="the directory to write NAME.py into (default: .)")
    emit_cmd.add_argument("--formulas", action="store_true", help="also write gradient_formulas(x, t): every weight's chain, as in a hand calculation (small dense networks; otherwise a note says why none)")
    check_cmd = commands.add_parser("check", allow_abbrev=False, help="central differences against the derivation; exit 1 on disagreement")
    check_cmd.add_argument("spec", help="the network spec")
    check_cmd.add_argument("--points", type=int, default=3, metavar="N", help="seeded random points besides the sample (default 3)")
    check_cmd.add_argument("--emitted", metavar="FILE", help="also check the gradients of this emitted trainer (chainrule emit) against central differences")
    report_cmd = commands.add_parser("report", allow_abbrev=False, help="write the derivation as LaTeX DIR/NAME.tex (and the PDF, or an HTML page)")
    report_cmd.add_argument("spec", help="the network spec")
    report_cmd.add_argument("-o", "--output", default=".", metavar="DIR", help="the directory to write NAME.tex (and NAME.pdf, NAME.html) into (default: .)")
    report_cmd.add_argument("--pdf", action="store_true", help="also compile NAME.pdf with pdflatex")
    report_cmd.add_argument("--html", action="store_true", help="also write NAME.html: one self-contained page, math as MathML, no TeX needed")
    report_cmd.add_argument("--param", action="append", default=[], metavar="NAME", help="show this parameter's chain (repeatable); big networks default to one weight per layer")
    report_cmd.add_argument("--steps", type=int, default=None, metavar="N", help="add a table of the loss (and the first four --param parameters) after each of N optimizer steps")
    verify_cmd = commands.add_parser("verify", allow_abbrev=False, help="judge hand calculations in claims files; exit 1 when some are wrong")
    verify_cmd.add_argument("spec", help="the network spec")
    verify_cmd.add_argument("claims", nargs="+", metavar="CLAIMS", help="claims files (.yaml, .yml, .toml or .json)")
    verify_cmd.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    verify_cmd.add_argument("--csv", metavar="FILE", help="write one row per claims file and claim (and a total per file)")
    init_cmd = commands.add_parser("init", allow_abbrev=False, help="write a commented starter spec DIR/NAME.yaml (never over an existing file)")
    init_cmd.add_argument("name", metavar="NAME", help="the network's name (an identifier); the file is NAME.yaml")
    init_cmd.add_argument("-o", "--output", default=".", metavar="DIR", help="the directory to write NAME.yaml into (default: .)")
    return parser


def run(argv: Sequence[str]) -> int:
    """Run one command; returns the exit code. Raises ChainruleError on bad input."""
    args = _parser().parse_args(list(argv))
    if args.command == "init":
        from chainrule.codegen.starter import write_starter

        print(f"wrote {write_starter(args.name, args.output)}")
        return 0
    spec = load_spec(args.spec)
    if args.command == "derive":
        derivation = derive(spec, args.param)
        steps = None
        if args.steps is not None:
            from chainrule.codegen.steps import follow_steps  # imported here: derive alone never loads the trainer

            steps = follow_steps(derivation, args.steps, args.spec)
        if args.json:
            sys.stdout.write(render_json(derivation, args.param, steps))
        else:
            sys.stdout.write(render_derivation(derivation, args.param) + ("\n" + render_steps(derivation, steps, args.param) if steps else ""))
        return 0
    if args.command == "emit":
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always", FormulasLeftOut)
            print(f"wrote {emit(spec, args.spec, args.output, formulas=args.formulas)}")
        for note in notes:
            print(f"chainrule: note: {note.message}", file=sys.stderr)
        return 0
    if args.command == "report":
        from chainrule.codegen.report.writer import write_report  # imported here: the other commands never pay for it

        for path in write_report(spec, args.spec, args.output, pdf=args.pdf, params=args.param, html=args.html, steps=args.steps):
            print(f"wrote {path}")
        return 0
    if args.command == "verify":
        from chainrule.codegen.terminal.verify import run_verify

        return run_verify(spec, args.spec, args.claims, as_json=args.json, csv_path=args.csv)
    checked = check(spec, args.points, args.emitted)
    sys.stdout.write(render_check(checked.derivation, checked.result, checked.emitted, checked.emitted_path))
    return 0 if checked.passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: exit code 2 and one line on stderr for bad input."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except ChainruleError as error:
        print(f"chainrule: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
