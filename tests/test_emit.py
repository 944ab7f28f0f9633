"""The emitted trainer: golden files, imported and run, against the derivation, finite differences,
PyTorch (test extra) and the worked example's published figures."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from chainrule.codegen.cli import main
from chainrule.codegen.golden import REFRESH, render_generated
from chainrule.codegen.trainer.context import render_trainer
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from generator import random_spec, spec_id
from helpers import EXAMPLE_FILES, ROOT, example, finite_difference, needs_torch, torch

GENERATED = ROOT / "generated"
NAMES = [p.stem for p in EXAMPLE_FILES]


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"emitted_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emitted(spec, tmp_path: Path, formulas: bool = False):
    """The trainer of ``spec`` written into ``tmp_path`` and imported (with ``gradient_formulas``
    if ``formulas``: ``chainrule emit --formulas``)."""
    path = tmp_path / f"{spec.name}.py"
    path.write_text(render_trainer(derive(spec), str(tmp_path / "spec.yaml"), str(tmp_path), formulas), encoding="utf-8")
    return import_file(path)


@pytest.fixture(scope="module")
def generated_modules():
    return {name: import_file(GENERATED / f"{example(name).network.spec.name}.py") for name in NAMES}


def flat(grads: dict, net) -> np.ndarray:
    return np.concatenate([np.ravel(grads[name]) for name in net.params])


# -- golden files --------------------------------------------------------------------------------


def test_generated_matches_what_emit_writes() -> None:
    expected = render_generated(ROOT)
    present = sorted(p.name for p in GENERATED.glob("*.py"))
    assert present == sorted(expected), f"generated/ holds {present}, expected {sorted(expected)}; refresh with `{REFRESH}`"
    for name, text in expected.items():
        found = (GENERATED / name).read_text(encoding="utf-8")
        if found != text:
            diff = "".join(difflib.unified_diff(found.splitlines(True), text.splitlines(True), f"generated/{name}", "emitted now"))
            pytest.fail(f"generated/{name} differs from what emit writes; refresh with `{REFRESH}`\n{diff}")


def test_emitting_twice_gives_the_same_bytes() -> None:
    d = example("mazur")
    assert render_trainer(d, "examples/mazur.yaml", "generated") == render_trainer(derive(d.network.spec), "examples/mazur.yaml", "generated")


@pytest.mark.parametrize("name", NAMES)
def test_imports_only_numpy_and_the_standard_library(name: str) -> None:
    tree = ast.parse((GENERATED / f"{example(name).network.spec.name}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= ({"numpy"} | set(sys.stdlib_module_names)), imported


@pytest.mark.parametrize("name", NAMES)
def test_no_line_is_longer_than_100_characters(name: str) -> None:
    # sums in comments elided (w1*x1 + w2*x2 + ... + w784*x784 + b1), code wrapped as ruff wraps it,
    # a seeded sample written as its draw (it was a 15,898-character literal)
    lines = (GENERATED / f"{example(name).network.spec.name}.py").read_text(encoding="utf-8").splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)


@pytest.mark.parametrize("name", NAMES)
def test_every_module_constant_is_read(name: str) -> None:
    tree = ast.parse((GENERATED / f"{example(name).network.spec.name}.py").read_text(encoding="utf-8"))
    constants = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert constants - read == set()


def test_the_fixed_code_is_the_runtime_module_copied_verbatim() -> None:
    from chainrule.codegen.trainer.context import RUNTIME, runtime_source

    for path in sorted(GENERATED.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for name in RUNTIME:
            source = runtime_source(name)
            if name == "forward" and "\nSTEPS = " in text:  # a sequence network's forward, [batch, steps, outputs]
                source = runtime_source("forward_sequence").replace("def forward_sequence(", "def forward(", 1)
            assert source + "\n" in text, (path.name, name)


def test_gradient_formulas_only_when_asked(tmp_path: Path) -> None:
    spec = example("mazur").network.spec
    assert not hasattr(import_file(GENERATED / "mazur.py").Network, "gradient_formulas")
    assert hasattr(emitted(spec, tmp_path, formulas=True).Network, "gradient_formulas")
    assert main(["emit", str(ROOT / "examples" / "mazur.yaml"), "-o", str(tmp_path / "cli"), "--formulas"]) == 0
    text = (tmp_path / "cli" / "mazur.py").read_text(encoding="utf-8")
    assert "def gradient_formulas(self, x, t):" in text and "chainrule emit mazur.yaml --formulas -o DIR" in text


@pytest.mark.parametrize("name,why", [("conv_small", "dense networks only"), ("bptt_worked", "dense networks only"),
                                      ("mlp_784_128_10", "small networks only (at most 200 parameters in at most 6 layers; this one has 101770 in 2)")])
def test_formulas_left_out_are_said_not_silent(name: str, why: str, tmp_path: Path, capsys) -> None:
    path = ROOT / "examples" / f"{name}.yaml"
    assert main(["emit", str(path), "-o", str(tmp_path / "cli"), "--formulas"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("chainrule: note: ") and why in captured.err, captured.err
    assert "gradient_formulas" not in (tmp_path / "cli" / f"{name}.py").read_text(encoding="utf-8")
    import chainrule
    from chainrule.codegen.commands import FormulasLeftOut

    with pytest.warns(FormulasLeftOut, match="--formulas: gradient_formulas is written for"):
        chainrule.emit(path, tmp_path / "api", formulas=True)


# -- against the derivation, finite differences and the published figures --------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradients_are_the_derivations(name: str, generated_modules) -> None:
    d, module = example(name), generated_modules[name]
    net = module.Network()
    X, T = d.values.X, d.values.T  # the spec's sample, or its batch
    assert np.isclose(net.loss(X, T), d.loss, rtol=1e-13)
    grads = net.gradients(X, T)
    for n, layer in enumerate(d.network.parameter_layers, start=1):  # matrices numbered by the layers with parameters
        l = layer - 1
        for W, dW in d.network.weight_matrices(layer, d.sample.dW[l]):  # an rnn's W and U apart
            np.testing.assert_allclose(grads[W], dW, rtol=1e-12, atol=1e-15)
        if d.sample.db[l] is not None:
            np.testing.assert_allclose(grads[f"b{n}"], d.sample.db[l], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", [n for n in NAMES if example(n).network.parameter_count < 3000])
def test_gradients_match_finite_differences_on_a_batch(name: str, generated_modules) -> None:
    d, module = example(name), generated_modules[name]
    net = module.Network()
    rng = np.random.default_rng(5)
    net.theta += rng.normal(0, 0.1, net.theta.shape)  # seeded biases are 0: a row of dead relus puts the next layer at its kink
    X = rng.uniform(-1, 1, (3, d.network.sizes[0] * max(d.network.spec.steps, 1)))  # a sequence's held flat
    T = np.tile(d.values.T[0], (3, 1))
    np.testing.assert_allclose(flat(net.gradients(X, T), net), finite_difference(net, X, T), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", [n for n in NAMES if example(n).small])
def test_per_weight_formulas_agree_with_the_layer_form(name: str, tmp_path: Path) -> None:
    d = example(name)
    module = emitted(d.network.spec, tmp_path, formulas=True)  # emit --formulas: generated/ has none
    net = module.Network()
    if not hasattr(net, "gradient_formulas"):
        pytest.skip("chains cut at a layer (too many paths): no per-weight formulas emitted")
    one = d.at_sample(0)  # per-weight formulas are one sample's (a batch of one is itself)
    formulas = net.gradient_formulas(one.values.x.tolist(), one.values.t.tolist())
    for ref in d.network.parameters():
        assert np.isclose(formulas[ref.name], one.gradient(ref), rtol=1e-12, atol=1e-15), ref.name


@pytest.mark.parametrize("name", NAMES)
def test_one_step_gives_the_derivations_update(name: str, generated_modules) -> None:
    d, module = example(name), generated_modules[name]
    net = module.Network()
    net.step(d.values.X, d.values.T)
    for n, layer in enumerate(d.network.parameter_layers, start=1):
        l = layer - 1
        for W, after in d.network.weight_matrices(layer, d.updated_W[l]):  # an rnn's W and U apart
            np.testing.assert_allclose(net.params[W], after, rtol=1e-12, atol=1e-15)
        if d.updated_b[l] is not None:
            np.testing.assert_allclose(net.params[f"b{n}"], d.updated_b[l], rtol=1e-12, atol=1e-15)


def test_worked_example_one_step_matches_the_published_weights(generated_modules) -> None:
    module = generated_modules["mazur"]
    net = module.Network()
    E = net.step(np.array(module.SAMPLE_X), np.array(module.SAMPLE_T))
    assert f"{E:.9f}" == "0.298371109"
    published = {"W1": [[0.149780716, 0.19956143], [0.24975114, 0.29950229]], "W2": [[0.35891648, 0.408666186], [0.511301270, 0.561370121]]}
    for name, values in published.items():
        np.testing.assert_allclose(net.params[name], values, atol=5e-9)


def test_worked_example_after_10000_steps_with_frozen_biases(tmp_path: Path) -> None:
    """The walkthrough's 0.0000351085 used already-updated output weights in the hidden deltas;
    the correct figure is 3.5102e-05."""
    data = mazur_data()
    for layer in data["layers"]:
        layer["freeze"] = ["biases"]
    module = emitted(spec_from_data(data, "mazur_frozen.yaml"), tmp_path)
    net = module.Network()
    X, T = np.array(module.SAMPLE_X), np.array(module.SAMPLE_T)
    for _ in range(10_000):
        net.step(X, T)
    assert f"{net.loss(X, T):.4e}" == "3.5102e-05"
    assert net.params["b1"][0] == 0.35 and net.params["b2"][0] == 0.60


def mazur_data() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "examples" / "mazur.yaml").read_text(encoding="utf-8"))


def test_one_sample_float_code_and_array_code_agree(generated_modules) -> None:
    module = generated_modules["mazur"]
    X, T = np.array(module.SAMPLE_X), np.array(module.SAMPLE_T)
    one, arrays = module.Network(), module.Network()
    for _ in range(5):
        one.step(X, T)  # straight-line floats
        arrays.step(np.vstack([X, X]), np.vstack([T, T]))  # arrays; the same mean loss
    np.testing.assert_allclose(one.theta, arrays.theta, rtol=1e-13)


# -- numerics, files, training ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mazur", "softmax_classifier", "xor", "digits", "custom_activation"])
def test_no_overflow_warnings_at_large_nets(name: str, generated_modules) -> None:
    d, module = example(name), generated_modules[name]
    net = module.Network()
    X = np.full((2, d.network.sizes[0]), 1000.0)
    X[1] *= -1
    T = np.tile(d.values.t, (2, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        E = net.loss(X, T)
        grads = net.gradients(X, T)
        net.step(X[:1], T[:1])
    assert np.isfinite(E) and all(np.isfinite(g).all() for g in grads.values())


def test_a_loss_that_turns_infinite_names_the_epoch_and_step(generated_modules) -> None:
    module = generated_modules["deep_tanh_relu"]
    net = module.Network()
    net.lr = 1e6
    d = example("deep_tanh_relu")
    X = np.random.default_rng(0).uniform(0, 1, (8, d.network.sizes[0])) * 100
    T = np.tile(d.values.t, (8, 1))
    with pytest.raises(FloatingPointError, match=r"at epoch \d+, step \d+"):
        with np.errstate(all="ignore"):
            net.fit(X, T, epochs=50, batch_size=4)
    assert np.isfinite(net.theta).all()  # the step on a loss that is not finite is not taken


@pytest.mark.parametrize("name", ["mazur", "xor"], ids=["one-sample float code", "array code"])
def test_a_step_on_a_loss_that_is_not_finite_is_not_taken(name: str, generated_modules) -> None:
    # data that is not finite is refused before any step (ValueError naming X): here a parameter
    # is nan, so the loss is
    module = generated_modules[name]
    net = module.Network()
    net.params["W1"][0, 0] = np.nan
    before, X, T = net.theta.copy(), np.array(module.SAMPLE_X), np.array(module.SAMPLE_T)
    with pytest.raises(FloatingPointError, match="the loss became nan"), np.errstate(all="ignore"):
        net.step(X, T)
    assert np.array_equal(net.theta, before, equal_nan=True) and net.steps == 0
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X: row 0 \(from 0\) holds a value that is not a finite number"):
        net.step(X, T)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["mazur", "xor", "softmax_classifier"], ids=["one-sample float code", "array code", "adam"])
def test_a_step_that_would_make_a_parameter_non_finite_is_not_taken(name: str, dtype, generated_modules) -> None:
    # lr = 1000 in float32 wrote nan into theta on a step whose loss was finite, and fit raised
    # later with the weights lost. The step is refused; parameters and optimizer state are kept.
    module = generated_modules[name]
    net = module.Network(dtype=dtype)
    X, T = np.array(module.SAMPLE_X), np.array(module.SAMPLE_T)
    net.step(X, T)
    kept = {key: value.copy() for key, value in vars(net).items() if isinstance(value, np.ndarray)}
    net.lr = np.inf if dtype is np.float64 else 1e40  # float32 overflows past 3.4e38
    with pytest.raises(FloatingPointError, match="made a parameter inf or nan"), np.errstate(all="ignore"):
        net.step(X, T)
    assert net.steps == 1
    for key, value in kept.items():
        assert np.array_equal(getattr(net, key), value), key
    net.lr = 0.01
    net.step(X, T)
    assert net.steps == 2 and np.isfinite(net.theta).all()


@pytest.mark.parametrize("bad", [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.2, 0.2], [np.nan, 1.0, 0.0]])
def test_softmax_cross_entropy_refuses_targets_that_do_not_sum_to_1(bad, generated_modules) -> None:
    """delta_o = out_o - T holds only where each row of T sums to 1: any other row would train on
    silently wrong gradients (before the check, b2's were off by 0.1 for a row [1, 1, 0])."""
    module = generated_modules["softmax_classifier"]
    net, X = module.Network(), np.random.default_rng(3).uniform(0, 1, (4, 4))
    T = np.eye(3)[[0, 1, 2, 0]]
    T[2] = bad
    before = net.theta.copy()
    # a row holding nan is refused for that first (it sums to nan)
    why = "holds a value that is not a finite number" if np.isnan(bad).any() else "sums to .*needs each row of targets to sum to 1"
    for call in (net.loss, net.gradients, net.step, net.evaluate, net.fit):
        with pytest.raises(ValueError, match=rf"^T: row 2 \(from 0\) {why}"):
            call(X, T)
    np.testing.assert_array_equal(net.theta, before)


def test_targets_that_sum_to_1_up_to_float32_rounding_are_taken(generated_modules) -> None:
    module = generated_modules["softmax_classifier"]
    X = np.random.default_rng(4).uniform(0, 1, (6, 4))
    T = np.random.default_rng(5).dirichlet(np.ones(3), size=6).astype(np.float32)
    net = module.Network(dtype=np.float32)
    net.step(X, T)
    grads = module.Network().gradients(X, T.astype(np.float64))
    assert all(np.isfinite(g).all() for g in grads.values())
    np.testing.assert_allclose(flat(grads, net), finite_difference(module.Network(), X, T.astype(np.float64)), atol=1e-7)


def test_save_and_load_round_trip_and_refuse_another_architecture(tmp_path: Path, generated_modules) -> None:
    mazur, xor = generated_modules["mazur"], generated_modules["xor"]
    net = mazur.Network()
    net.step(np.array(mazur.SAMPLE_X), np.array(mazur.SAMPLE_T))
    net.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(mazur.Network.load(tmp_path / "m.npz").theta, net.theta)
    with pytest.raises(ValueError, match="another architecture"):
        xor.Network.load(tmp_path / "m.npz")
    net.save(tmp_path / "plain")  # NumPy adds .npz; load takes the path save was given
    np.testing.assert_array_equal(mazur.Network.load(tmp_path / "plain").theta, net.theta)
    np.savez(tmp_path / "part.npz", architecture=np.array(mazur.ARCHITECTURE), W1=net.params["W1"])
    with pytest.raises(ValueError, match="no array b1, W2, b2"):
        mazur.Network.load(tmp_path / "part.npz")


def test_load_refuses_the_parameters_of_another_activation_parameter(tmp_path: Path) -> None:
    def module(alpha: float, where: Path):
        where.mkdir()
        return emitted(spec_from_data({"name": "leaky", "inputs": 2, "layers": [{"name": "h", "units": 2, "activation": {"name": "leaky_relu", "alpha": alpha}},
                                                                             {"name": "o", "units": 1, "activation": "sigmoid"}], "loss": "bce"}, "leaky.yaml"), where)

    module(0.01, tmp_path / "a").Network().save(tmp_path / "a.npz")
    with pytest.raises(ValueError, match=r"saved by another architecture .*leaky_relu\(alpha=0.01\).* this module is .*leaky_relu\(alpha=0.5\)"):
        module(0.5, tmp_path / "b").Network.load(tmp_path / "a.npz")


def test_float32_stays_float32_and_close_to_float64(generated_modules) -> None:
    module = generated_modules["softmax_classifier"]
    X = np.random.default_rng(1).uniform(0, 1, (16, 4))
    T = np.eye(3)[np.arange(16) % 3]
    single, double = module.Network(dtype=np.float32), module.Network()
    for _ in range(3):
        single.step(X, T)
        double.step(X, T)
    assert single.theta.dtype == np.float32 and all(g.dtype == np.float32 for g in single.gradients(X, T).values())
    np.testing.assert_allclose(single.theta, double.theta, rtol=1e-4, atol=1e-5)


def test_fit_is_seeded(generated_modules) -> None:
    module = generated_modules["xor"]
    X, T = module.load_data(GENERATED / module.DATA, *module.DATA_COLUMNS)
    runs = []
    for _ in range(2):
        net = module.Network()
        runs.append(net.fit(X, T, epochs=5, batch_size=2, seed=4))
    assert runs[0] == runs[1]


def test_xor_is_learned(generated_modules) -> None:
    module = generated_modules["xor"]
    X, T = module.load_data(GENERATED / module.DATA, *module.DATA_COLUMNS)
    net = module.Network()
    net.fit(X, T, epochs=300, batch_size=4)
    result = net.evaluate(X, T)
    assert result["accuracy"] == 1.0 and result["loss"] < 0.05


def test_digits_reach_95_percent_held_out_within_30_epochs(generated_modules) -> None:
    module = generated_modules["digits"]
    X, T = module.load_data(GENERATED / module.DATA)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[: int(0.8 * len(X))], order[int(0.8 * len(X)) :]
    net = module.Network()
    net.fit(X[train], T[train], epochs=30, batch_size=32, seed=0)
    accuracy = net.evaluate(X[test], T[test])["accuracy"]
    assert accuracy >= 0.95, accuracy


@pytest.mark.slow  # 30 epochs of a conv net, about 3 s
def test_the_conv_net_reaches_98_percent_of_the_digits_held_out_within_30_epochs(generated_modules) -> None:
    """Issue 16: a conv net on the 8x8 digits, the same split as the dense one's (which reaches
    about 98.6% here); the images taken as [batch, 1, 8, 8]."""
    module = generated_modules["digits_conv"]
    X, T = module.load_data(GENERATED / module.DATA)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[: int(0.8 * len(X))], order[int(0.8 * len(X)) :]
    net = module.Network()
    net.fit(X[train].reshape(-1, 1, 8, 8), T[train], epochs=30, batch_size=32, seed=0)
    accuracy = net.evaluate(X[test].reshape(-1, 1, 8, 8), T[test])["accuracy"]
    assert accuracy >= 0.98, accuracy


def test_running_the_file_trains_and_prints_the_loss(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--epochs", "50"], capture_output=True, text=True, check=True)
    before, after = (float(line.split()[-1]) for line in result.stdout.splitlines())
    assert before == pytest.approx(0.298371109) and after < before
    csv = tmp_path / "data.csv"
    csv.write_text("i1,i2,t1,t2\n0.05,0.1,0.01,0.99\n0.5,0.2,0.9,0.1\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--data", str(csv), "--epochs", "3"], capture_output=True, text=True, check=True)
    assert "loss after 3 epochs" in result.stdout


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.csv", None, "missing.csv: No such file or directory"),
    ("letters.csv", "i1,i2,t1,t2\n0.05,x,0.01,0.99\n", "could not convert string 'x'"),
    ("header.csv", "a,b\n1,2\n", "expected columns named i1, i2, t1, t2, or 2 inputs and then 2 targets, header has ['a', 'b']"),
    ("target.csv", "i1,id,i2,label\n0.05,1,0.1,0.01\n", "no column named t1, t2: the header has ['i1', 'id', 'i2', 'label']"),
    ("empty.csv", "i1,i2,t1,t2\n", "no rows of data after the header"),
    ("text.npz", "not a zip", "not a .npz archive"),
    ("wide.csv", "i1,i2,t1,t2\n0.05,0.1,0.01,0.99,7\n", "the rows have 5 values, the header 4 names"),
])
def test_running_the_file_on_bad_data_is_one_line_and_exit_2(name: str, content, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--data", str(path), "--epochs", "2"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stdout == "", result
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"mazur.py: error: {path}: ") and message in result.stderr


@pytest.mark.parametrize("text", ['t2,i2,"t1",i1,id\n4,2,3,1,9\n', '\ufeffi1,i2,t1,t2\n1,2,3,4\n', 'a,b,c,d\n1,2,3,4\n'],
                         ids=["by name, quoted, reordered, extra", "byte-order mark", "by position"])
def test_csv_columns_are_found_by_name_or_else_by_position(text: str, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    X, T = import_file(GENERATED / "mazur.py").load_data(path)
    assert X.tolist() == [[1.0, 2.0]] and T.tolist() == [[3.0, 4.0]]


def test_csv_header_names_may_hold_commas_in_quotes(tmp_path: Path) -> None:
    # '"height, cm",w,t' was split at every comma: 'no column named height, cm'
    path = tmp_path / "data.csv"
    path.write_text('"height, cm",w,t1,t2\n1,2,3,4\n', encoding="utf-8")
    X, T = import_file(GENERATED / "mazur.py").load_data(path, inputs=["height, cm", "w"], targets=["t1", "t2"])
    assert X.tolist() == [[1.0, 2.0]] and T.tolist() == [[3.0, 4.0]]


def test_running_the_file_stops_with_one_line_when_the_loss_is_not_finite(tmp_path: Path) -> None:
    module = import_file(GENERATED / "custom_activation.py")
    path = tmp_path / "huge.csv"
    row = ",".join(["1e300"] * len(module.INPUTS) + ["0.5"] * len(module.TARGETS))
    path.write_text(",".join(module.INPUTS + module.TARGETS) + "\n" + row + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = subprocess.run([sys.executable, "-W", "ignore", str(GENERATED / "custom_activation.py"), "--data", str(path), "--epochs", "3"],
                                capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result
    assert result.stderr.strip().startswith("custom_activation.py: the loss became") and "at epoch 1, step 1" in result.stderr


def test_running_the_file_checks_its_arguments() -> None:
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--batch-size", "0"], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stderr == "mazur.py: error: --batch-size must be at least 1, got 0\n"
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--epochs", "0"], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["loss before: 0.298371109", "loss after 0 epochs: 0.298371109"]


# -- the command ----------------------------------------------------------------------------------


def test_emit_writes_the_file_and_replaces_it(tmp_path: Path) -> None:
    target = tmp_path / "mazur.py"
    target.write_text("old", encoding="utf-8")
    assert main(["emit", str(ROOT / "examples" / "mazur.yaml"), "-o", str(tmp_path)]) == 0
    assert target.read_text(encoding="utf-8").startswith('"""Trainer for the network `mazur`')
    assert [p.name for p in tmp_path.iterdir()] == ["mazur.py"]


def test_emit_refuses_a_bad_spec_and_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninputs: [a]\nlayers: [{name: h, units: 2, activaton: relu}]\nloss: mse\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["emit", str(bad), "-o", str(out)]) == 2
    assert "activaton" in capsys.readouterr().err
    assert not out.exists()


def test_emit_into_a_place_it_cannot_write_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert main(["emit", str(ROOT / "examples" / "mazur.yaml"), "-o", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and err.count("\n") == 1 and "Traceback" not in err


# -- random architectures against PyTorch ---------------------------------------------------------

def torch_steps(d, kind_hyper, X, T, steps: int):
    from test_optimizers import TORCH
    from torch_bridge import activation, loss

    W = [torch.tensor(w.copy(), requires_grad=True) for w in d.values.W]
    b = [None if v is None else torch.tensor(v.copy(), requires_grad=True) for v in d.values.b]
    frozen = [layer.freeze for layer in d.network.spec.layers]
    params = [w for w, f in zip(W, frozen) if "weights" not in f] + [v for v, f in zip(b, frozen) if v is not None and "biases" not in f]
    optimizer = TORCH[d.network.spec.optimizer.kind](params, kind_hyper)
    for _ in range(steps):
        optimizer.zero_grad()
        out = torch.tensor(X)
        for l in range(1, d.network.depth + 1):
            out = out @ W[l - 1].T + (0 if b[l - 1] is None else b[l - 1])
            out = activation(d.network, l)(out)
        loss(d.network, out, torch.tensor(T)).backward()
        optimizer.step()
    return [w.detach().numpy() for w in W], [None if v is None else v.detach().numpy() for v in b]


@needs_torch
@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("seed", range(6), ids=spec_id)
def test_ten_steps_match_torch(seed: int, kind: str, tmp_path: Path) -> None:
    from chainrule.derive.optimizers import OPTIMIZERS

    data = random_spec(seed)
    data["optimizer"] = {"kind": kind, "lr": 0.01, "weight_decay": 0.01}
    spec = spec_from_data(data, spec_id(seed))
    d = derive(spec)
    hyper = {name: h.default for name, h in OPTIMIZERS[kind].hyper.items()} | dict(spec.optimizer.hyper)
    module = emitted(spec, tmp_path)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (4, d.network.sizes[0]))
    T = np.tile(d.values.t, (4, 1))
    net = module.Network()
    for _ in range(10):
        net.step(X, T)
    W, b = torch_steps(d, hyper, X, T, 10)
    for l in range(d.network.depth):
        np.testing.assert_allclose(net.params[f"W{l + 1}"], W[l], rtol=1e-8, atol=1e-10)
        if b[l] is not None:
            np.testing.assert_allclose(net.params[f"b{l + 1}"], b[l], rtol=1e-8, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("seed", range(40), ids=spec_id)
def test_random_architectures_gradients_match_torch(seed: int, tmp_path: Path) -> None:
    from torch_bridge import torch_gradients

    spec = spec_from_data(random_spec(seed), spec_id(seed))
    d = derive(spec)
    module = emitted(spec, tmp_path)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (3, d.network.sizes[0]))
    T = np.tile(d.values.T[0], (3, 1))
    loss, dW, db = torch_gradients(d.network, d.values, X, T)
    net = module.Network()
    grads = net.gradients(X, T)
    assert np.isclose(net.loss(X, T), loss, rtol=1e-10)
    for l in range(d.network.depth):
        np.testing.assert_allclose(grads[f"W{l + 1}"], dW[l], rtol=1e-8, atol=1e-11)
        if db[l] is not None:
            np.testing.assert_allclose(grads[f"b{l + 1}"], db[l], rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("seed", range(40), ids=spec_id)
def test_random_architectures_one_sample_step_is_the_derivations(seed: int, tmp_path: Path) -> None:
    """Batch 1 with sgd takes the straight-line float code where it is emitted."""
    data = random_spec(seed)
    data["optimizer"] = {"kind": "sgd", "lr": 0.1} | ({"weight_decay": 0.01} if seed % 2 else {})  # decay: a NameError once
    spec = spec_from_data(data, spec_id(seed))
    d = derive(spec)
    module = emitted(spec, tmp_path)
    net = module.Network()
    assert np.isclose(net.step(d.values.x[None], d.values.t[None]), d.loss, rtol=1e-12)
    for l in range(d.network.depth):
        np.testing.assert_allclose(net.params[f"W{l + 1}"], d.updated_W[l], rtol=1e-11, atol=1e-14)
        if d.updated_b[l] is not None:
            np.testing.assert_allclose(net.params[f"b{l + 1}"], d.updated_b[l], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("hidden", [False, True], ids=["softmax output", "softmax hidden"])
def test_a_softmax_of_one_unit_trains(hidden: bool, tmp_path: Path) -> None:
    # its float code once wrote max(net_o1) of a single float
    layers = [{"name": "h", "units": 1, "activation": "softmax"}] if hidden else []
    layers.append({"name": "o", "units": 1, "activation": "sigmoid" if hidden else "softmax"})
    spec = spec_from_data({"name": "one", "inputs": 2, "layers": layers, "loss": "half_sse" if hidden else "cross_entropy",
                           "sample": {"x": [0.3, -0.2], "t": [1.0]}}, "one.yaml")
    d = derive(spec)
    net = emitted(spec, tmp_path, formulas=True).Network()
    formulas = net.gradient_formulas(list(d.values.x), list(d.values.t))
    gradients = net.gradients(d.values.x[None], d.values.t[None])
    assert np.isclose(net.step(d.values.x[None], d.values.t[None]), d.loss, rtol=1e-12)
    for l in range(d.network.depth):
        np.testing.assert_allclose(net.params[f"W{l + 1}"], d.updated_W[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(gradients[f"W{l + 1}"], d.sample.dW[l], rtol=1e-12, atol=1e-15)
    assert set(formulas) == set(d.chains)


def test_written_files_get_the_usual_permissions(tmp_path) -> None:
    """A new file gets 0666 under the umask (not mkstemp's 0600); a replaced one keeps its mode."""
    import os

    from chainrule.codegen.files import write_atomic

    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.py", "x = 1\n")
        assert (tmp_path / "new.py").stat().st_mode & 0o777 == 0o644
        (tmp_path / "kept.py").write_text("")
        (tmp_path / "kept.py").chmod(0o750)
        write_atomic(tmp_path / "kept.py", "x = 2\n")
        assert (tmp_path / "kept.py").stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(umask)


def test_params_is_a_dict_whose_entries_write_into_theta(generated_modules) -> None:
    # spec.md: params is a dict; an entry assigned is copied into theta, which the step reads
    net = generated_modules["mazur"].Network()
    assert isinstance(net.params, dict) and list(net.params) == ["W1", "b1", "W2", "b2"]
    net.params["W2"] = [[1.0, 2.0], [3.0, 4.0]]
    net.params.update(b1=[0.5])
    assert net.theta[5:9].tolist() == [1.0, 2.0, 3.0, 4.0] and net.theta[4] == 0.5
    with pytest.raises(ValueError, match=r"W1: expected shape \(2, 2\), got \(3,\)"):
        net.params["W1"] = [1.0, 2.0, 3.0]
    with pytest.raises(KeyError, match="W3: not a parameter"):
        net.params["W3"] = [1.0]
    with pytest.raises(TypeError, match="views into theta"):
        del net.params["W1"]


def test_bce_accuracy_counts_each_label() -> None:
    spec = spec_from_data({"name": "labels", "inputs": 2, "layers": [{"name": "o", "units": 3, "activation": "sigmoid", "weights": [[1, 0], [0, 1], [-1, 0]], "biases": [0, 0, 0]}],
                           "loss": "bce"}, "labels.yaml")
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        net = emitted(spec, Path(directory)).Network()
    X = np.array([[1.0, -1.0], [-1.0, 1.0]])  # outputs above 1/2: [o1] and [o2, o3]
    assert net.evaluate(X, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))["accuracy"] == 1.0
    # 4 of 6 labels right, where the argmax of each row (o1, then o2) would call both rows right
    assert net.evaluate(X, np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.parametrize("name", ["mazur", "xor", "softmax_classifier"])
def test_an_empty_batch_is_refused_naming_X(name: str, generated_modules) -> None:
    # step(X[:0], T[:0]) and fit on no rows raised ZeroDivisionError
    module = generated_modules[name]
    net = module.Network()
    X, T = np.array(module.SAMPLE_X), np.array(module.SAMPLE_T)
    before = net.theta.copy()
    for call in (lambda: net.step(X[:0], T[:0]), lambda: net.fit(X[:0], T[:0], batch_size=4), lambda: net.loss(X[:0], T[:0])):
        with pytest.raises(ValueError, match=r"X: expected shape \[batch, \d+\] with at least one row, got \[0, \d+\]"):
            call()
    assert np.array_equal(net.theta, before)


def test_a_refused_float32_step_warns_nothing(generated_modules) -> None:
    module = generated_modules["mazur"]
    net = module.Network(dtype=np.float32)
    net.lr = 1e40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FloatingPointError, match="made a parameter inf or nan"):
            net.step(np.array(module.SAMPLE_X), np.array(module.SAMPLE_T))


def test_the_trainers_command_line_holds_out_rows_sets_the_rate_and_saves(tmp_path):
    """--validation-split holds out rows drawn with the seed (their loss per epoch and at the end),
    --lr sets the rate, --save writes what Network.load reads; a split that holds out no row of
    the data is one line and exit 2."""
    data = tmp_path / "xor.csv"
    data.write_text("i1,i2,t1,t2\n" + "\n".join(f"{a},{b},{a ^ b},{1 - (a ^ b)}" for a in (0, 1) for b in (0, 1) for _ in range(3)) + "\n")
    saved = tmp_path / "w"
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--data", str(data), "--epochs", "2", "--validation-split", "0.25",
                             "--lr", "0.7", "--save", str(saved)], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert sum("; held out: loss" in line for line in lines) == 2
    assert lines[-2].startswith("held out (3 rows): loss ") and lines[-1] == f"saved {saved}.npz"
    module = import_file(GENERATED / "mazur.py")
    trained = module.Network.load(saved)
    assert not np.array_equal(trained.theta, module.Network().theta)
    refused = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--validation-split", "0.5"], capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.splitlines()[-1].endswith("--validation-split 0.5 of 1 row holds out 0")


def test_predict_takes_one_sample():
    module = import_file(GENERATED / "mazur.py")
    net = module.Network()
    one = net.predict([0.05, 0.1])
    assert one.shape == (2,) and np.array_equal(one, net.predict([[0.05, 0.1]])[0])
    assert one[0] == pytest.approx(0.75136507, abs=5e-9)  # out_o1 of the worked example
    with pytest.raises(ValueError, match=r"^X: expected one sample \[2\] or a batch \[batch, 2\], got \[3\]$"):
        net.predict([1.0, 0.0, 1.0])


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed must be at least 0, got -1"),
    (["--epochs", "-1"], "--epochs must be at least 0, got -1"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (["--save", "/nonexistent/dir/w"], "--save /nonexistent/dir/w: no directory /nonexistent/dir"),
])
def test_the_trainers_bad_options_are_one_line_before_any_training(args, message):
    done = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--epochs", "1", *args], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"mazur.py: error: {message}\n")


@pytest.mark.parametrize("method", ["loss", "gradients", "step", "predict"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_value_that_is_not_finite_is_refused_naming_its_argument(method, bad):
    """inf or nan in X (or T) is a ValueError naming it and its row, from every method, where it
    gave a finite loss (sigmoid(inf) = 1) or nan numbers; the parameters are unchanged."""
    net = import_file(GENERATED / "mazur.py").Network()
    before = net.theta.copy()
    X, T = np.array([[0.05, 0.1], [0.2, bad]]), np.array([[0.01, 0.99], [0.5, 0.5]])
    call = {"predict": lambda: net.predict(X)}.get(method, lambda: getattr(net, method)(X, T))
    with pytest.raises(ValueError, match=r"^X: row 1 \(from 0\) holds a value that is not a finite number$"):
        call()
    if method != "predict":
        with pytest.raises(ValueError, match=r"^T: row 0 \(from 0\)"):
            getattr(net, method)(X[:1], np.array([[bad, 0.5]]))
    assert np.array_equal(net.theta, before)


def test_a_data_file_with_nan_is_one_line(tmp_path):
    data = tmp_path / "n.csv"
    data.write_text("i1,i2,t1,t2\n0.1,0.2,0.3,0.4\n0.5,nan,0.1,0.2\n")
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--data", str(data)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"mazur.py: error: {data}: X: row 1 (from 0) holds a value that is not a finite number"]


def test_values_too_large_to_square_are_finite_and_taken():
    """The finiteness check squares the data first: 1e200 overflows that, and is looked at again
    value by value rather than refused."""
    net = import_file(GENERATED / "mazur.py").Network()
    assert np.isfinite(net.loss([[1e200, -1e250]], [[0.1, 0.2]]))


def test_a_parameter_too_large_to_square_takes_the_kept_copy_path(generated_modules):
    """sgd's step keeps no copy of theta where both sums of squares are finite; a parameter of
    1e160 (finite, its square not) takes the path that keeps one, and the step is theta - lr*g."""
    module = generated_modules["mlp_784_128_10"]
    rng = np.random.default_rng(1)
    X, T = rng.uniform(0, 1, (4, 784)), np.eye(10)[[1, 2, 3, 4]]
    net = module.Network()
    net.params["b1"][7] = 1e160  # a relu unit far beyond its inputs
    before, grads = net.theta.copy(), net.gradients(X, T)
    net.step(X, T)
    flat = np.concatenate([grads[name].ravel() for name in module.SLOTS])
    assert net.steps == 1
    np.testing.assert_allclose(net.theta, before - net.lr * flat, rtol=1e-12, atol=1e-15)
