"""``chainrule init NAME`` (a commented starter spec that derives, emits and checks cleanly, never
written over a file) and ``chainrule --help``'s lists of activations, losses, optimizers and layer
kinds, read from the registries, each example a valid spec field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import chainrule
from chainrule.codegen.cli import main
from chainrule.codegen.starter import activation_example, kind_example, optimizer_example, starter_spec
from chainrule.derive.kinds import KINDS
from chainrule.derive.optimizers import OPTIMIZERS
from chainrule.derive.registry import ACTIVATIONS, LOSSES
from helpers import ROOT


def test_init_writes_a_commented_spec_that_derives_emits_and_checks(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "first"]) == 0
    assert capsys.readouterr().out == "wrote first.yaml\n"
    path = tmp_path / "first.yaml"
    text = path.read_text(encoding="utf-8")
    assert text == starter_spec("first") and text.startswith("# first: a starter network spec")
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 8
    spec = chainrule.load(path)
    d = chainrule.derive(spec)
    assert spec.name == "first" and d.parameters == 13 and 0 < d.loss < 1
    assert chainrule.check(spec).passed
    emitted = chainrule.emit(spec, tmp_path / "out")
    assert chainrule.check(spec, points=1, emitted=emitted).passed
    module = chainrule.trainer(spec)
    net = module.Network()
    X, T = module.SAMPLE_X, module.SAMPLE_T
    before = net.loss(X, T)
    net.fit(X, T, epochs=50, batch_size=1)
    assert net.loss(X, T) < before / 2
    assert main(["derive", "first.yaml"]) == 0 and main(["check", "first.yaml"]) == 0


def test_init_never_overwrites_and_refuses_a_bad_name(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("mine\n", encoding="utf-8")
    assert main(["init", "mine", "-o", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"chainrule: error: {path}: already exists; not overwritten (choose another NAME or remove it)\n"
    assert path.read_text(encoding="utf-8") == "mine\n"
    assert "chainrule: error: first.yaml: already exists; not overwritten (choose another NAME or remove it)" in (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    for bad in ("2fast", "class", "a-b", "__x"):
        assert main(["init", bad, "-o", str(tmp_path / "new")]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"chainrule: error: {bad}: NAME: ") and err.count("\n") == 1
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert main(["init", "x", "-o", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_help_lists_every_registry_name_with_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "init" in text
    for names, example in ((ACTIVATIONS, activation_example), (OPTIMIZERS, optimizer_example), (KINDS, kind_example)):
        for name in names:
            assert any(line.split()[:1] == [name] and example(name) in line for line in text.splitlines()), name
    for name in LOSSES:
        assert any(line.split()[:2] == [name, "loss:"] for line in text.splitlines()), name


def with_fields(**fields) -> dict:
    data = yaml.safe_load(starter_spec("probe"))
    data.update(fields)
    return data


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_activation_example_is_a_valid_layer(name: str) -> None:
    layer = yaml.safe_load(kind_example("dense").replace("sigmoid", "x"))
    layer["activation"] = yaml.safe_load(activation_example(name))["activation"]
    if ACTIVATIONS[name].whole_layer:
        layer["name"], layer["units"] = "o", 2
        data = with_fields(layers=[layer], targets=["t1", "t2"], loss="cross_entropy", sample={"x": [0.5, -0.25], "t": [0.25, 0.75]})
    else:
        data = with_fields(layers=[layer, {"name": "o", "units": 1, "activation": "sigmoid"}])
    chainrule.load(data)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_example_is_valid(name: str) -> None:
    spec = chainrule.load(with_fields(**yaml.safe_load(optimizer_example(name))))
    assert spec.optimizer.kind == name


def test_the_docs_show_the_help_s_lists_as_printed(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    printed = capsys.readouterr().out.splitlines()
    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    block = text.split("## The lists of --help", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    shown = [line for line in block.splitlines() if line.strip() != "..."]
    assert len(shown) >= 8 and all(line in printed for line in shown), [line for line in shown if line not in printed]
