"""The README's two commands are the ones a new user runs, and CI runs the README's test command."""

from __future__ import annotations

import re

from helpers import ROOT


def commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_opens_with_install_and_run_then_install_and_test() -> None:
    first, second = commands()[:2]
    assert "pip install ." in first and "chainrule derive examples/mazur.yaml" in first
    assert "pip install '.[test]'" in second and "pytest" in second


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands()[1] in ci.splitlines()


def test_readme_sample_output_is_what_the_tool_prints(capsys) -> None:
    from chainrule.codegen.cli import main

    block = re.search(r"```console\n\$ chainrule (.+?)\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    args = block.group(1).split()
    args[1] = str(ROOT / args[1])
    assert main(args) == 0
    out = capsys.readouterr().out
    for line in block.group(2).splitlines():
        if line.strip() != "..." and not line.strip().endswith("..."):
            assert line in out, line
