"""Convolution, pooling and flatten layers (issue 16 phase 1, spec section 6), in the layer form.

The loss, every gradient (the derivation's and the emitted trainer's) and one sgd step against
PyTorch float64 autograd with its own modules (nn.Conv1d, nn.Conv2d, nn.MaxPool1d/2d with ties,
nn.AvgPool1d/2d, nn.Flatten, nn.Linear) over a seeded generator of architectures; check and
check --emitted; bad input; the commands that need per-weight chains refuse in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.derive import derive
from chainrule.derive.check import check_derivation
from chainrule.derive.spec import spec_from_data
from helpers import needs_torch, torch
from test_emit import emitted

ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity", "elu")


def _pool_kernel(rng: np.random.Generator, sides: list[int]) -> list[int] | None:
    """A kernel that divides every side (a pool's windows tile its input), not all ones."""
    kernel = [int(rng.choice([k for k in (1, 2, 3) if n % k == 0])) for n in sides]
    return kernel if any(k > 1 for k in kernel) else None


def random_conv_spec(seed: int) -> dict:
    """A seeded valid spec over feature maps: 1-D or 2-D inputs, one or two blocks of a
    convolution (channels, kernel, stride, padding, bias, activation drawn) and/or a pool (max or
    average), a flatten, dense layers; a batch of 1-4 with inputs on a grid of halves (ties in
    the max-pools), either reduction."""
    rng = np.random.default_rng([16, seed])
    dims = int(rng.integers(1, 3))
    shape = [int(rng.integers(1, 3))] + [int(n) for n in rng.integers(3, 9, size=dims)]
    layers, maps, tag = [], list(shape), "2d" if dims == 2 else "1d"
    for block in range(int(rng.integers(1, 3))):
        if block > 0 or rng.random() < 0.8:
            kernel = [int(rng.integers(1, min(n, 4) + 1)) for n in maps[1:]]
            stride = [int(rng.integers(1, 4)) for _ in kernel]
            padding = [int(rng.integers(0, k)) for k in kernel]
            layer = {"name": f"c{block + 1}", "kind": f"conv{tag}", "channels": int(rng.integers(1, 4)), "activation": str(rng.choice(ACTIVATIONS)),
                     "kernel": kernel if rng.random() < 0.5 or dims == 1 else int(kernel[0]) if len(set(kernel)) == 1 else kernel,
                     "stride": stride, "padding": padding, "bias": str(rng.choice(["per_channel", "none"]))}
            if isinstance(layer["kernel"], int):
                layer["kernel"] = [layer["kernel"]] * dims
            if any(k > n + 2 * p for k, n, p in zip(layer["kernel"], maps[1:], padding)):
                continue
            layers.append(layer)
            maps = [layer["channels"]] + [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(maps[1:], layer["kernel"], stride, padding)]
        kernel = _pool_kernel(rng, maps[1:])
        if kernel is not None and rng.random() < 0.7:
            layers.append({"name": f"p{block + 1}", "kind": f"{rng.choice(['max', 'avg'])}pool{tag}", "kernel": kernel})
            maps = [maps[0]] + [n // k for n, k in zip(maps[1:], kernel)]
    layers.append({"name": "f", "kind": "flatten"})
    if rng.random() < 0.5:
        layers.append({"name": "h", "units": int(rng.integers(2, 5)), "activation": "tanh"})
    loss = str(rng.choice(["cross_entropy", "mse", "half_sse"]))
    outputs = int(rng.integers(2, 4))
    layers.append({"name": "o", "units": outputs, "activation": {"cross_entropy": "softmax", "mse": "identity", "half_sse": "sigmoid"}[loss]})
    samples = []
    for _ in range(int(rng.integers(1, 5))):
        x = (rng.integers(-2, 3, size=shape) / 2).tolist()
        t = np.eye(outputs)[rng.integers(outputs)].tolist() if loss == "cross_entropy" else rng.uniform(0, 1, outputs).round(3).tolist()
        samples.append({"x": x, "t": t})
    return {"name": "conv", "inputs": {"shape": shape}, "layers": layers, "loss": loss, "samples": samples,
            "reduction": str(rng.choice(["mean", "sum"])), "optimizer": {"kind": "sgd", "lr": 0.1}, "seed": seed}


def _torch_modules(d):
    """The network as PyTorch's own modules, with the derivation's starting values."""
    import torch_bridge

    network, values = d.network, d.values
    modules, params = [], []
    for l, layer in enumerate(network.spec.layers, start=1):
        w, nn = layer.window, torch.nn
        if layer.kind in ("conv1d", "conv2d"):
            cls = nn.Conv1d if layer.kind == "conv1d" else nn.Conv2d
            m = cls(w.in_shape[0], w.channels, w.kernel, stride=w.stride, padding=w.padding, bias=values.b[l - 1] is not None, dtype=torch.float64)
        elif layer.window is not None:
            m = {"maxpool1d": nn.MaxPool1d, "maxpool2d": nn.MaxPool2d, "avgpool1d": nn.AvgPool1d, "avgpool2d": nn.AvgPool2d}[layer.kind](w.kernel)
        elif layer.kind == "flatten":
            m = nn.Flatten()
        else:
            m = nn.Linear(network.sizes[l - 1], network.sizes[l], bias=values.b[l - 1] is not None, dtype=torch.float64)
        if layer.has_parameters:
            with torch.no_grad():
                m.weight.copy_(torch.tensor(values.W[l - 1]))
                if m.bias is not None:
                    m.bias.copy_(torch.tensor(values.b[l - 1]))
            params.append((m.weight, m.bias))
        modules.append(m)
        if layer.has_parameters:
            modules.append(torch_bridge.activation(network, l))
    return modules, params


def _torch_run(d, modules):
    import torch_bridge

    X = torch.tensor(d.values.X.reshape((d.values.samples, *d.network.spec.input_shape)))
    out = X
    for m in modules:
        out = m(out)
    scale = d.values.samples if d.network.spec.reduction == "sum" else 1
    return torch_bridge.loss(d.network, out, torch.tensor(d.values.T)) * scale


def assert_torchs(d, tmp_path) -> None:
    """Loss, every gradient, one sgd step: the derivation, the emitted trainer and PyTorch."""
    modules, params = _torch_modules(d)
    loss = _torch_run(d, modules)
    loss.backward()
    value = loss.detach()
    assert d.loss == pytest.approx(float(value), rel=1e-12, abs=1e-14)
    layers = [l for l, layer in enumerate(d.network.spec.layers) if layer.has_parameters]
    net = emitted(d.network.spec, tmp_path).Network()
    X = d.values.X.reshape((d.values.samples, *d.network.spec.input_shape))
    assert net.loss(X, d.values.T) == pytest.approx(float(value), rel=1e-12, abs=1e-14)
    grads = net.gradients(X, d.values.T)
    flat = net.gradients(d.values.X, d.values.T)  # the maps flat, row-major, are taken too
    for n, (l, (weight, bias)) in enumerate(zip(layers, params), start=1):
        np.testing.assert_allclose(d.sample.dW[l], weight.grad.numpy(), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(grads[f"W{n}"], weight.grad.numpy(), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(flat[f"W{n}"], grads[f"W{n}"], rtol=0, atol=0)
        assert (bias is None) == (d.sample.db[l] is None)
        if bias is not None:
            np.testing.assert_allclose(d.sample.db[l], bias.grad.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(grads[f"b{n}"], bias.grad.numpy(), rtol=1e-10, atol=1e-13)
    optimizer = torch.optim.SGD([p for pair in params for p in pair if p is not None], lr=d.network.spec.optimizer.value("lr"))
    optimizer.step()
    net.step(X, d.values.T)
    for n, (l, (weight, bias)) in enumerate(zip(layers, params), start=1):
        np.testing.assert_allclose(d.updated_W[l], weight.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(net.params[f"W{n}"], weight.detach().numpy(), rtol=1e-12, atol=1e-14)
        if bias is not None:
            np.testing.assert_allclose(d.updated_b[l], bias.detach().numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(net.params[f"b{n}"], bias.detach().numpy(), rtol=1e-12, atol=1e-14)


SEEDS = range(40)


@needs_torch
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"conv-seed{s}")
def test_random_architectures_are_torchs(seed, tmp_path):
    assert_torchs(derive(spec_from_data(random_conv_spec(seed), f"seed {seed}")), tmp_path)


def test_the_generator_covers_the_kinds_and_options():
    specs = [random_conv_spec(s) for s in SEEDS]
    kinds = {layer.get("kind") for spec in specs for layer in spec["layers"]}
    assert {"conv1d", "conv2d", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "flatten"} <= kinds
    convs = [layer for spec in specs for layer in spec["layers"] if layer.get("kind", "").startswith("conv")]
    assert {c["bias"] for c in convs} == {"per_channel", "none"}
    assert any(max(c["stride"]) > 1 for c in convs) and any(max(c["padding"]) > 0 for c in convs)
    assert any(c["activation"] == "relu" for c in convs) and {s["reduction"] for s in specs} == {"mean", "sum"}
    assert any(len(s["samples"]) > 1 for s in specs) and any(any(k.get("kind") == "conv2d" for k in s["layers"][1:2]) for s in specs)


#: A max-pool over the inputs themselves, every window with a tie (PyTorch routes to the first largest).
TIES = {
    "name": "ties", "inputs": {"shape": [1, 4, 4]},
    "layers": [{"name": "p", "kind": "maxpool2d", "kernel": 2}, {"name": "f", "kind": "flatten"}, {"name": "o", "units": 2, "activation": "identity"}],
    "loss": "half_sse", "sample": {"x": [[[1, 1, 0, 2], [0, 1, 2, 2], [3, 0, 5, 1], [3, 3, 5, 5]]], "t": [0.5, -0.5]}, "seed": 1,
}
#: The issue's worked example: input 5x5, a 2x2 kernel, a sigmoid, max-pool 2x2, a dense softmax.
SMALL = {
    "name": "conv_small", "inputs": {"shape": [1, 5, 5]},
    "layers": [{"name": "c", "kind": "conv2d", "channels": 1, "kernel": 2, "activation": "sigmoid", "weights": [[[[0.1, -0.2], [0.3, 0.4]]]], "biases": [0.0]},
               {"name": "p", "kind": "maxpool2d", "kernel": 2}, {"name": "f", "kind": "flatten"},
               {"name": "o", "units": 2, "activation": "softmax"}],
    "loss": "cross_entropy", "seed": 0,
    "sample": {"x": [[[0.1 * ((3 * i + j) % 7) for j in range(5)] for i in range(5)]], "t": [1, 0]},
}


@needs_torch
@pytest.mark.parametrize("case", ["ties", "small"])
def test_cases_are_torchs(case, tmp_path):
    d = derive(spec_from_data({"ties": TIES, "small": SMALL}[case], case))
    assert_torchs(d, tmp_path)


@needs_torch
def test_the_example_is_torchs(tmp_path):
    from helpers import example

    assert_torchs(example("conv_small"), tmp_path)


def test_ties_go_to_the_first_largest_in_row_major_order():
    d = derive(spec_from_data(TIES, "ties"))
    delta_p = d.sample.deltas[0]  # dE/d(the inputs) of the pool
    routed = (delta_p[0].reshape(4, 4) != 0).astype(int)
    assert routed.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("case", ["small", "conv1d", "l2"])
def test_check_and_check_emitted_pass(case, tmp_path):
    """Finite differences against the derivation and the emitted trainer (with an L2 penalty on
    the kernel too: l2/2 * the sum of its squares)."""
    data = SMALL if case == "small" else {**SMALL, "loss": {"kind": "cross_entropy", "l2": 0.05}} if case == "l2" else {
        "name": "c1", "inputs": {"shape": [2, 7]},
        "layers": [{"name": "c", "kind": "conv1d", "channels": 2, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh"},
                   {"name": "p", "kind": "avgpool1d", "kernel": 2}, {"name": "f", "kind": "flatten"},
                   {"name": "o", "units": 2, "activation": "sigmoid"}], "loss": "bce", "seed": 4}
    assert check_derivation(derive(spec_from_data(data, case))).passed
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["emit", str(path), "-o", str(tmp_path)]) == 0
    assert main(["check", str(path), "--emitted", str(tmp_path / f"{data['name']}.py")]) == 0


#: SMALL on a 15x15 input: more units than a small network's, so the layer route.
BIG = {**{k: v for k, v in SMALL.items() if k != "sample"}, "name": "conv_big", "inputs": {"shape": [1, 15, 15]}}


def test_derive_shows_the_layer_form_and_json_keys_the_kernel(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(BIG))
    assert main(["derive", str(path)]) == 0
    text = capsys.readouterr().out
    assert "net_c = correlate(x, W1, kernel=2, stride=1, padding=0) + b1" in text
    assert "delta_p = to_argmax(delta_f, windows of out_c, kernel=2, stride=2, padding=0)" in text
    assert "dE_dW1 = correlate(x, delta_c, kernel=2, stride=1, padding=0)" in text
    assert main(["derive", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["form"] == "layer"
    assert np.shape(document["gradients"]["W1"]) == (1, 1, 2, 2) and np.shape(document["gradients"]["b1"]) == (1,)
    assert np.shape(document["forward"]["out_c"]) == (1, 14, 14) and np.shape(document["forward"]["out_p"]) == (1, 7, 7)
    assert [layer["kind"] for layer in document["layers"]] == ["conv2d", "maxpool2d", "flatten", "softmax"]
    batch = tmp_path / "batch.yaml"
    batch.write_text(yaml.safe_dump({**BIG, "samples": [{"x": np.ones(225).tolist(), "t": [1, 0]}, {"x": np.zeros(225).tolist(), "t": [0, 1]}]}))
    assert main(["derive", str(batch), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert np.shape(document["forward"]["out_c"]) == (2, 1, 14, 14) and np.shape(document["forward"]["out_f"]) == (2, 49)
    assert [np.shape(s["forward"]["out_p"]) for s in document["per_sample"]] == [(1, 7, 7)] * 2


def _layers(*extra: dict) -> list[dict]:
    return list(extra)


CONV = {"name": "c", "kind": "conv2d", "channels": 1, "kernel": 2, "activation": "relu"}
FLAT, OUT = {"name": "f", "kind": "flatten"}, {"name": "o", "units": 2, "activation": "identity"}
BAD = {
    "kernel larger than the input": ({"shape": [1, 3, 3]}, [{**CONV, "kernel": 4}, FLAT, OUT], "layers[0].kernel", "larger than its input"),
    "kernel larger than the padded input": ({"shape": [1, 3, 3]}, [{**CONV, "kernel": 6, "padding": 1}, FLAT, OUT], "layers[0].kernel", "padded by 1"),
    "stride 0": ({"shape": [1, 5, 5]}, [{**CONV, "stride": 0}, FLAT, OUT], "layers[0].stride", "integer in [1"),
    "negative padding": ({"shape": [1, 5, 5]}, [{**CONV, "padding": [0, -1]}, FLAT, OUT], "layers[0].padding[1]", "integer in [0"),
    "flatten before a conv": ({"shape": [1, 5, 5]}, [FLAT, CONV, OUT], "layers[1].kind", "reads feature maps"),
    "conv on a list of inputs": (4, [CONV, FLAT, OUT], "layers[0].kind", "inputs: {shape"),
    "dense after a conv": ({"shape": [1, 5, 5]}, [CONV, OUT], "layers[1]", "put a flatten layer before it"),
    "dense after a pool": ({"shape": [1, 4, 4]}, [{"name": "p", "kind": "maxpool2d", "kernel": 2}, OUT], "layers[1]", "put a flatten"),
    "ends on maps": ({"shape": [1, 5, 5]}, [CONV], "layers[0]", "ends on feature maps"),
    "ends on a flatten": ({"shape": [1, 5, 5]}, [CONV, FLAT], "layers[1]", "ends on a flatten; expected dense layers after it"),
    "pool that does not tile": ({"shape": [1, 5, 5]}, [{"name": "p", "kind": "avgpool2d", "kernel": 2}, FLAT, OUT], "layers[0].kernel", "do not tile"),
    "conv1d on 2-D maps": ({"shape": [1, 5, 5]}, [{**CONV, "kind": "conv1d"}, FLAT, OUT], "layers[0].kind", "[channels, length]"),
    "weights of the wrong shape": ({"shape": [1, 5, 5]}, [{**CONV, "weights": [[[0.1, 0.2], [0.3, 0.4]]]}, FLAT, OUT], "layers[0].weights[0]", "shape [1, 1, 2, 2]"),
    "biases of the wrong shape": ({"shape": [1, 5, 5]}, [{**CONV, "biases": [0.1, 0.2]}, FLAT, OUT], "layers[0].biases", "shape [1]"),
    "softmax on a conv": ({"shape": [1, 5, 5]}, [{**CONV, "activation": "softmax"}, FLAT, OUT], "layers[0].activation", "elementwise"),
    "a shape of one side": ({"shape": [5]}, [CONV, FLAT, OUT], "inputs.shape", "[channels, height, width]"),
    "a sample of the wrong shape": ({"shape": [1, 2, 2]}, [FLAT, OUT], "sample.x[0][1]", "nested as their shape"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_the_field(case, tmp_path, capsys):
    inputs, layers, field, words = BAD[case]
    data = {"name": "bad", "inputs": inputs, "layers": layers, "loss": "half_sse"}
    if case == "a sample of the wrong shape":
        data["sample"] = {"x": [[[1, 2], [3]]], "t": [0, 1]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["emit", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{field}:" in err and words in err, err
    assert not (tmp_path / "out").exists()


def test_a_sample_nested_or_flat_is_the_same():
    nested = derive(spec_from_data(SMALL, "nested"))
    flat = derive(spec_from_data({**SMALL, "sample": {"x": np.ravel(SMALL["sample"]["x"]).tolist(), "t": [1, 0]}}, "flat"))
    assert nested.loss == flat.loss and np.array_equal(nested.values.X, flat.values.X)
    assert nested.network.spec.inputs[:3] == ("x_1_1_1", "x_1_1_2", "x_1_1_3")


def test_check_skips_a_sample_on_a_max_pool_tie(tmp_path, capsys):
    """A window with two largest inputs is a kink of max (like relu at 0): central differences
    straddle the switch of the largest, so check skips the sample with a note and draws random
    points away from ties (before: DISAGREE at W1[0, 0, 0, 1], relative error 0.67)."""
    data = {"name": "tie", "inputs": {"shape": [1, 3, 3]},
            "layers": [{"name": "c", "kind": "conv2d", "channels": 1, "kernel": 2, "activation": "identity", "bias": "none", "weights": [[[[1.0, 0.0], [0.0, 0.0]]]]},
                       {"name": "p", "kind": "maxpool2d", "kernel": 2}, {"name": "f", "kind": "flatten"},
                       {"name": "o", "units": 1, "activation": "identity", "weights": [[2.0]], "biases": [0.0]}],
            "loss": "half_sse", "sample": {"x": [[[1, 1, 5], [0, 0, 0], [0, 0, 0]]], "t": [0]}}
    path = tmp_path / "tie.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "the sample is skipped: the window of p_1_1_1 has two largest inputs" in out
