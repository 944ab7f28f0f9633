"""Recurrent layers (``kind: rnn``, issue 16, spec section 6): backpropagation through time in the
layer form.

The loss, every gradient (the derivation's and the emitted trainer's) and one sgd step against
PyTorch float64 autograd over a seeded generator of sequence networks: ``nn.RNN`` (tanh, relu)
with one bias (``bias_hh`` fixed at 0 and left out of the optimizer; chainrule's b is
``bias_ih``), the same recurrence written with torch operations for sigmoid (``nn.RNN`` has no
sigmoid), then ``nn.Linear`` layers at every step; targets null at some steps, batches, both
reductions. Also check and check --emitted, bad input, and the commands that need per-weight
chains refusing in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.derive import derive
from chainrule.derive.check import check_derivation
from chainrule.derive.spec import spec_from_data
from helpers import example, needs_torch, torch
from test_emit import emitted

RNN_ACTIVATIONS = ("tanh", "sigmoid", "relu")
LOSSES = {"half_sse": "identity", "mse": "tanh", "bce": "sigmoid", "cross_entropy": "softmax"}


def random_rnn_spec(seed: int) -> dict:
    """A seeded valid sequence network: 1-3 inputs, an rnn of 1-4 units (tanh, sigmoid or relu,
    a bias or none, h_0 zeros or drawn), sometimes a dense tanh layer after it, a dense output
    layer for one of four losses; 1-5 steps; a batch of 1-3 sequences whose targets are null at
    some steps (at least one step of the batch has targets); either reduction."""
    rng = np.random.default_rng([61, seed])
    inputs, units, steps = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
    rnn = {"name": "h", "kind": "rnn", "units": units, "activation": RNN_ACTIVATIONS[seed % 3], "bias": str(rng.choice(["per_unit", "none"]))}
    if rng.random() < 0.5:
        rnn["initial"] = rng.uniform(-0.5, 0.5, units).round(3).tolist()
    layers = [rnn]
    if rng.random() < 0.3:
        layers.append({"name": "g", "units": int(rng.integers(1, 4)), "activation": "tanh"})
    loss = list(LOSSES)[seed % 4]
    outputs = int(rng.integers(2, 4)) if loss == "cross_entropy" else int(rng.integers(1, 3))
    layers.append({"name": "y", "units": outputs, "activation": LOSSES[loss]})
    samples = []
    for _ in range(int(rng.integers(1, 4))):
        x = rng.uniform(-1, 1, (steps, inputs)).round(3).tolist()
        if loss == "cross_entropy":
            t = [np.eye(outputs)[rng.integers(outputs)].tolist() for _ in range(steps)]
        else:
            t = rng.uniform(0, 1, (steps, outputs)).round(3).tolist()
        samples.append({"x": x, "t": [None if rng.random() < 0.3 else row for row in t]})
    if all(row is None for s in samples for row in s["t"]):
        samples[0]["t"][-1] = [1.0] + [0.0] * (outputs - 1)
    return {"name": "rnn", "inputs": inputs, "steps": steps, "layers": layers, "loss": loss, "samples": samples,
            "reduction": str(rng.choice(["mean", "sum"])), "optimizer": {"kind": "sgd", "lr": 0.1}, "seed": seed}


def _torch_model(d):
    """The network in torch, with the derivation's starting values: (run, params), where
    ``run(X)`` gives the outputs [batch, steps, outputs] and ``params`` pairs (weight, bias) per
    layer with parameters, an rnn's (W, U, b)."""
    import torch_bridge

    network, values, nn = d.network, d.values, torch.nn
    stages, params, initials = [], [], {}
    for l, layer in enumerate(network.spec.layers, start=1):
        W, b = values.W[l - 1], values.b[l - 1]
        if layer.is_rnn:
            before = network.sizes[l - 1]
            h0 = torch.tensor(np.array(dict(d.program.constants)[f"h0_{layer.name}"]), requires_grad=True)
            initials[f"h0_{layer.name}"] = h0
            if layer.activation.name in ("tanh", "relu"):
                m = nn.RNN(before, layer_units := network.sizes[l], nonlinearity=layer.activation.name, batch_first=True, dtype=torch.float64)
                with torch.no_grad():
                    m.weight_ih_l0.copy_(torch.tensor(W[:, :before]))
                    m.weight_hh_l0.copy_(torch.tensor(W[:, before:]))
                    m.bias_ih_l0.copy_(torch.tensor(b if b is not None else np.zeros(layer_units)))
                    m.bias_hh_l0.zero_()
                m.bias_hh_l0.requires_grad_(False)  # one bias: b is bias_ih (bias_hh stays 0)
                m.bias_ih_l0.requires_grad_(b is not None)
                stages.append(lambda x, m=m, h0=h0: m(x, h0.expand(x.shape[0], -1).unsqueeze(0).contiguous())[0])
                params.append((m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0 if b is not None else None))
            else:  # nn.RNN has no sigmoid: the recurrence in torch operations
                Wt, Ut = (torch.tensor(a, requires_grad=True) for a in (W[:, :before], W[:, before:]))
                bt = None if b is None else torch.tensor(b, requires_grad=True)

                def recur(x, Wt=Wt, Ut=Ut, bt=bt, h0=h0):
                    h, outs = h0.expand(x.shape[0], -1), []
                    for t in range(x.shape[1]):
                        h = torch.sigmoid(x[:, t] @ Wt.T + h @ Ut.T + (bt if bt is not None else 0))
                        outs.append(h)
                    return torch.stack(outs, dim=1)
                stages.append(recur)
                params.append((Wt, Ut, bt))
            continue
        m = nn.Linear(network.sizes[l - 1], network.sizes[l], bias=b is not None, dtype=torch.float64)
        with torch.no_grad():
            m.weight.copy_(torch.tensor(W))
            if b is not None:
                m.bias.copy_(torch.tensor(b))
        f = torch_bridge.activation(network, l)
        stages.append(lambda x, m=m, f=f: f(m(x)))
        params.append((m.weight, None, m.bias))

    def run(X):
        out = X
        for stage in stages:
            out = stage(out)
        return out

    run.initials = initials  # h_0 of each rnn, its gradient after backward
    return run, params


def _torch_loss(d, Y, T):
    """The spec's loss summed over the outputs and the steps that have targets, reduced over the
    batch, written with torch's own functions."""
    loss, mask = d.network.spec.loss.name, ~torch.isnan(T)
    t = torch.where(mask, T, torch.zeros_like(T))
    if loss == "half_sse":
        terms = 0.5 * (Y - t) ** 2
    elif loss == "mse":
        terms = (Y - t) ** 2 / Y.shape[-1]
    elif loss == "bce":
        terms = torch.nn.functional.binary_cross_entropy(Y, t, reduction="none") / Y.shape[-1]
    else:  # softmax with cross-entropy, from its log
        terms = -t * torch.log(Y)
    total = torch.where(mask, terms, torch.zeros_like(terms)).sum()
    return total / Y.shape[0] if d.network.spec.reduction == "mean" else total


def assert_torchs(d, tmp_path) -> None:
    """Loss, every gradient, one sgd step: the derivation, the emitted trainer and PyTorch."""
    steps = d.network.spec.steps
    X = d.values.X.reshape(d.values.samples, steps, -1)
    T = d.values.T.reshape(d.values.samples, steps, -1)
    run, params = _torch_model(d)
    loss = _torch_loss(d, run(torch.tensor(X)), torch.tensor(T))
    loss.backward()
    value = float(loss.detach())
    assert d.loss == pytest.approx(value, rel=1e-12, abs=1e-14)
    for name, h0 in run.initials.items():  # dE/dh_0 (h_0 is not trained)
        np.testing.assert_allclose(d.initial_gradients[name], h0.grad.numpy(), rtol=1e-10, atol=1e-13)
    net = emitted(d.network.spec, tmp_path).Network()
    assert net.loss(X, T) == pytest.approx(value, rel=1e-12, abs=1e-14)
    grads = net.gradients(X, T)
    layers = [l for l, layer in enumerate(d.network.spec.layers) if layer.has_parameters]
    for l, (W, U, b) in zip(layers, params):
        names = dict(d.network.weight_matrices(l + 1, d.sample.dW[l]))
        for name, tensor in zip(names, (W, U)):
            np.testing.assert_allclose(names[name], tensor.grad.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-10, atol=1e-13)
        assert (b is None) == (d.sample.db[l] is None)
        if b is not None:
            name = f"b{d.network.matrix_number(l + 1)}"
            np.testing.assert_allclose(d.sample.db[l], b.grad.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(grads[name], b.grad.numpy(), rtol=1e-10, atol=1e-13)
    torch.optim.SGD([p for triple in params for p in triple if p is not None], lr=d.network.spec.optimizer.value("lr")).step()
    net.step(X, T)
    for l, (W, U, b) in zip(layers, params):
        after = d.network.weight_matrices(l + 1, d.updated_W[l])
        for (name, value), tensor in zip(after, (W, U)):
            np.testing.assert_allclose(value, tensor.detach().numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(net.params[name], tensor.detach().numpy(), rtol=1e-12, atol=1e-14)
        if b is not None:
            np.testing.assert_allclose(d.updated_b[l], b.detach().numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(net.params[f"b{d.network.matrix_number(l + 1)}"], b.detach().numpy(), rtol=1e-12, atol=1e-14)


SEEDS = range(36)


@needs_torch
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"rnn-seed{s}")
def test_random_rnns_are_torchs(seed, tmp_path):
    assert_torchs(derive(spec_from_data(random_rnn_spec(seed), f"seed {seed}")), tmp_path)


def test_the_generator_covers_the_options():
    specs = [random_rnn_spec(s) for s in SEEDS]
    assert {s["layers"][0]["activation"] for s in specs} == set(RNN_ACTIVATIONS)
    assert {s["loss"] for s in specs} == set(LOSSES) and {s["reduction"] for s in specs} == {"mean", "sum"}
    assert {s["steps"] for s in specs} == {1, 2, 3, 4, 5} and {s["layers"][0]["units"] for s in specs} == {1, 2, 3, 4}
    assert any(row is None for s in specs for sample in s["samples"] for row in sample["t"])
    assert any(len(s["samples"]) > 1 for s in specs) and any(len(s["layers"]) == 3 for s in specs)
    assert {s["layers"][0]["bias"] for s in specs} == {"per_unit", "none"} and any("initial" in s["layers"][0] for s in specs)


@needs_torch
def test_the_example_is_torchs(tmp_path):
    from helpers import example

    assert_torchs(example("bptt_worked"), tmp_path)


def test_the_worked_example_by_hand():
    """Spec section 6's example: h1 = tanh(0.5), h2 = tanh(1 + 0.1 h1), y = 2h; E = half_sse over both steps."""
    from helpers import example

    d = example("bptt_worked")
    h1 = np.tanh(0.5)
    h2 = np.tanh(0.5 * 2.0 + 0.1 * h1)
    y1, y2 = 2 * h1, 2 * h2
    assert d.loss == pytest.approx(((y1 - 1) ** 2 + (y2 - 2) ** 2) / 2, rel=1e-14)
    # BPTT: delta_2 = (y2 - 2)*2*(1 - h2^2); delta_1 = ((y1 - 1)*2 + 0.1*delta_2)*(1 - h1^2), the path through h2 included
    delta2 = (y2 - 2) * 2 * (1 - h2**2)
    delta1 = ((y1 - 1) * 2 + 0.1 * delta2) * (1 - h1**2)
    np.testing.assert_allclose(d.sample.deltas[0][0], [delta1, delta2], rtol=1e-13)
    W, U = (m for _, m in d.network.weight_matrices(1, d.sample.dW[0]))
    assert W[0, 0] == pytest.approx(delta1 * 1.0 + delta2 * 2.0, rel=1e-13)
    assert U[0, 0] == pytest.approx(delta1 * 0.0 + delta2 * h1, rel=1e-13)
    assert d.sample.db[0][0] == pytest.approx(delta1 + delta2, rel=1e-13)


@pytest.mark.parametrize("seed", [0, 5, 10, 17])
def test_check_and_check_emitted_agree(seed, tmp_path):
    spec = spec_from_data(random_rnn_spec(seed), f"seed {seed}")
    path = tmp_path / "rnn.yaml"
    path.write_text(yaml.safe_dump(random_rnn_spec(seed)), encoding="utf-8")
    assert check_derivation(derive(spec)).passed
    assert main(["emit", str(path), "-o", str(tmp_path)]) == 0
    assert main(["check", str(path), "--emitted", str(tmp_path / "rnn.py")]) == 0


def test_derive_json_keys_w_u_b_and_values_per_step(capsys):
    """A big rnn's JSON is keyed by matrix (a small one's by scalar names: test_rnn_chains)."""
    from helpers import EXAMPLES

    assert main(["derive", "--json", str(EXAMPLES / "sequence_sum.yaml")]) == 0
    document = json.loads(capsys.readouterr().out)
    assert list(document["gradients"]) == ["W1", "U1", "b1", "W2", "b2"] and list(document["updated"]) == ["W1", "U1", "b1", "W2", "b2"]
    assert np.shape(document["sample"]["x"]) == (8, 1)
    assert np.shape(document["forward"]["out_h"]) == (8, 16)
    assert document["layers"][0]["kind"] == "rnn"
    assert "U1.T @ delta_h[t+1]" in document["layers"][0]["delta"]


def test_the_layer_form_writes_every_step_at_t_and_the_targets_apart_from_t(capsys):
    """t is the step: the layers above the rnn are written at step t too, and the target vector
    as target[t], never ``out_y - t``."""
    from helpers import EXAMPLES

    assert main(["derive", str(EXAMPLES / "bptt_worked.yaml")]) == 0
    text = capsys.readouterr().out.split("Layer form", 1)[1]
    for line in ("net_y[t] = W2 @ out_h[t]", "out_y[t] = identity(net_y[t])", "delta_y[t] = out_y[t] - target[t]",
                 "dE_dW2 = sum over t of outer(delta_y[t], out_h[t])    (t = 1, ..., 2)", "dE_dh0_h = (U1.T @ delta_h[1])"):
        assert line in text, line
    assert " - t " not in text and "target[t] the targets at step t" in text


def test_the_trainer_takes_sequences_and_null_targets(tmp_path):
    from helpers import example

    net = emitted(example("bptt_worked").network.spec, tmp_path).Network()
    X = np.array([[[1.0], [2.0]], [[0.5], [-1.0]]])
    T = np.array([[[1.0], [np.nan]], [[np.nan], [0.5]]])  # each sequence with a loss at one step
    assert net.predict(X).shape == (2, 2, 1) and net.predict(X[0]).shape == (2, 1)
    both = net.loss(X, T)
    alone = [net.loss(X[k:k + 1], T[k:k + 1]) for k in range(2)]
    assert both == pytest.approx(np.mean(alone), rel=1e-14)
    with pytest.raises(ValueError, match=r"X: expected shape \[batch, 2, 1\]"):
        net.loss(X[:, :1], T[:, :1])


BAD = [
    ({"steps": 3}, "sample.x", "expected a sequence of 3 steps (steps: 3"),
    ({"steps": None}, "steps", "required by layers[0] (kind: rnn)"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "tanh", "recurrent_weights": [[0.1, 0.2]]},
                 {"name": "y", "units": 1, "activation": "identity"}]}, "layers[0].recurrent_weights[0]", "U as 1 rows of 1"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 2, "activation": "tanh", "weights": [[0.5]]},
                 {"name": "y", "units": 1, "activation": "identity"}]}, "layers[0].weights", "W as 2 rows of 1"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "tanh"}]}, "layers[0].kind", "not the output layer"),
    ({"sample": {"x": [[1.0], [2.0]], "t": [None, None]}}, "sample.t", "every step's target is null"),
    ({"sample": {"x": [[1.0], [2.0]], "t": [[1.0], [None]]}}, "sample.t[1][0]", "write null for the whole step, sample.t[1]: null"),
    ({"samples": [{"x": [[1.0], [2.0]], "t": [[1.0], [2.0]]}, {"x": [[1.0]], "t": [[1.0]]}]}, "samples[1].x", "every sequence has that length"),
    ({"inputs": {"shape": [1, 4]}, "layers": [{"name": "f", "kind": "flatten"}, {"name": "h", "kind": "rnn", "units": 1, "activation": "tanh"},
                                              {"name": "y", "units": 1, "activation": "identity"}], "sample": None},
     "layers[1].kind", "an rnn layer reads a vector at each step"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "softmax"}, {"name": "y", "units": 1, "activation": "identity"}]},
     "layers[0].activation", "elementwise activation"),
    ({"layers": [{"name": "h", "units": 1, "activation": "tanh"}]}, "steps", "no layer is of kind: rnn"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "relu", "recurrent_weights": [[1e300]], "initial": [1.0]},
                 {"name": "y", "units": 1, "activation": "identity"}]}, "layers[0].recurrent_weights", "net_h1 at step 2 is inf"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "relu", "weights": [[1e308]], "recurrent_weights": [[0.5]]},
                 {"name": "y", "units": 1, "activation": "identity"}]}, "layers[0].weights", "net_h1 at step 2 is inf"),
    ({"layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "relu", "recurrent_weights": [[1e80]], "initial": [1.0]},
                 {"name": "y", "units": 1, "activation": "identity"}]}, "layers[0].recurrent_weights",
     "the loss on the sample is inf: net_h1 at step 2 is 1e+160, too large"),
]


@pytest.mark.parametrize("change,field,message", BAD, ids=[b[1] for b in BAD])
def test_bad_input_is_one_line_naming_the_field(change, field, message, tmp_path, capsys):
    from helpers import EXAMPLES

    data = yaml.safe_load((EXAMPLES / "bptt_worked.yaml").read_text(encoding="utf-8"))
    for key, value in change.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    if "samples" in change:
        data.pop("sample")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["emit", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"bad.yaml: {field}: " in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_the_sequence_example_learns_the_sum_as_the_docs_say(tmp_path):
    """docs/trainer.md's session: the held-out loss it states, far below a constant guess's."""
    from helpers import ROOT, example

    page = (ROOT / "docs" / "trainer.md").read_text(encoding="utf-8")
    net = emitted(example("sequence_sum").network.spec, tmp_path).Network()
    rng = np.random.default_rng(0)

    def sequences(n):
        X = rng.uniform(-0.5, 0.5, (n, 8, 1))
        T = np.full((n, 8, 1), np.nan)
        T[:, -1, 0] = X.sum(axis=(1, 2))
        return X, T

    X, T = sequences(2000)
    X_held, T_held = sequences(500)
    net.fit(X, T, epochs=30, batch_size=32, seed=0)
    held = net.loss(X_held, T_held)
    assert held < 0.005 and f"{held:.3g}" in page
    assert f"{np.mean(T_held[:, -1, 0] ** 2):.3g}" in page


def test_a_data_file_of_sequences_is_a_npz_the_trainer_trains_on(tmp_path, capsys):
    """``data: {path: seq.npz}`` with X [samples, steps, inputs] and T (nan: no target): the
    emitted trainer run without --data trains on it; a .csv is refused in one line."""
    from helpers import EXAMPLES
    from test_emit import import_file

    data = yaml.safe_load((EXAMPLES / "sequence_sum.yaml").read_text(encoding="utf-8"))
    rng = np.random.default_rng(3)
    X = rng.uniform(-0.5, 0.5, (64, 8, 1))
    T = np.full((64, 8, 1), np.nan)
    T[:, -1, 0] = X.sum(axis=(1, 2))
    np.savez(tmp_path / "seq.npz", X=X, T=T)
    (tmp_path / "seq.yaml").write_text(yaml.safe_dump({**data, "data": {"path": "seq.npz"}}), encoding="utf-8")
    assert main(["emit", str(tmp_path / "seq.yaml"), "-o", str(tmp_path)]) == 0
    trainer = import_file(tmp_path / "sequence_sum.py")
    capsys.readouterr()
    trainer.main(["--epochs", "3", "--batch-size", "16"])
    before, after = (float(line.split(": ")[1]) for line in capsys.readouterr().out.splitlines() if line.startswith("loss"))
    assert before == pytest.approx(trainer.Network().loss(X, T), rel=1e-8) and after < before  # printed to 9 digits
    (tmp_path / "csv.yaml").write_text(yaml.safe_dump({**data, "data": {"path": "seq.csv"}}), encoding="utf-8")
    assert main(["emit", str(tmp_path / "csv.yaml"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "csv.yaml: data.path: expected a .npz file of sequences (X [samples, 8, inputs]" in err
    assert not (tmp_path / "out").exists()


@needs_torch
@pytest.mark.parametrize("seed", [1, 6])
def test_l2_penalises_w_and_u_as_torch(seed, tmp_path):
    """loss: {kind: ..., l2: 0.05}: E gains l2/2 * (W, U and the dense weights squared; biases not)."""
    data = random_rnn_spec(seed)
    data["loss"] = {"kind": data["loss"], "l2": 0.05}
    d = derive(spec_from_data(data, f"seed {seed}"))
    steps = d.network.spec.steps
    X, T = (A.reshape(d.values.samples, steps, -1) for A in (d.values.X, d.values.T))
    run, params = _torch_model(d)
    loss = _torch_loss(d, run(torch.tensor(X)), torch.tensor(T))
    loss = loss + 0.05 / 2 * sum((p ** 2).sum() for triple in params for p in triple[:2] if p is not None)
    loss.backward()
    assert d.loss == pytest.approx(float(loss.detach()), rel=1e-12)
    grads = emitted(d.network.spec, tmp_path).Network().gradients(X, T)
    for l, (W, U, _) in zip([l for l, layer in enumerate(d.network.spec.layers) if layer.has_parameters], params):
        for (name, derived), tensor in zip(d.network.weight_matrices(l + 1, d.sample.dW[l]), (W, U)):
            np.testing.assert_allclose(derived, tensor.grad.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_a_group_may_name_u_alone(tmp_path):
    """optimizer.groups naming U1 (its own rate): U takes it, W the optimizer's, in the derivation and the trainer."""
    from helpers import EXAMPLES

    data = yaml.safe_load((EXAMPLES / "bptt_worked.yaml").read_text(encoding="utf-8"))
    data["optimizer"] = {"kind": "sgd", "lr": 0.1, "groups": [{"params": ["U1"], "lr": 0.5}]}
    d = derive(spec_from_data(data, "groups"))
    (_, dW), (_, dU) = d.network.weight_matrices(1, d.sample.dW[0])
    (_, W), (_, U) = d.network.weight_matrices(1, d.updated_W[0])
    assert U[0, 0] == pytest.approx(0.1 - 0.5 * dU[0, 0], rel=1e-14) and W[0, 0] == pytest.approx(0.5 - 0.1 * dW[0, 0], rel=1e-14)
    net = emitted(d.network.spec, tmp_path).Network()
    net.step(d.values.X, d.values.T)
    assert net.params["U1"][0, 0] == pytest.approx(U[0, 0], rel=1e-14) and net.params["W1"][0, 0] == pytest.approx(W[0, 0], rel=1e-14)


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_groups_over_w_and_u_step_as_the_derivation(seed, tmp_path):
    """Settings that differ between W1 and U1 follow theta's order (W1 row by row, then U1)."""
    data = random_rnn_spec(seed)
    data["optimizer"] = {"kind": "momentum", "lr": 0.1, "momentum": 0.9, "groups": [{"params": ["U1"], "lr": 0.5}, {"params": ["W1"], "momentum": 0.5}]}
    d = derive(spec_from_data(data, f"seed {seed}"))
    net = emitted(d.network.spec, tmp_path).Network()
    net.step(d.values.X, d.values.T)
    for l in d.network.parameter_layers:
        for name, after in d.network.weight_matrices(l, d.updated_W[l - 1]):
            np.testing.assert_allclose(net.params[name], after, rtol=1e-12, atol=1e-15)


def test_the_trainer_takes_a_step_without_targets_whole(tmp_path):
    """nan marks a whole step without targets, as null does in the spec: a step with nan for
    some outputs only, or no targets anywhere, is refused naming T (before: the nan output was
    masked silently, and an all-nan T gave a loss of 0)."""
    net = emitted(example("bptt_worked").network.spec, tmp_path).Network()
    X = np.array([[[1.0], [2.0]]])
    assert np.isfinite(net.loss(X, np.array([[[np.nan], [2.0]]])))
    with pytest.raises(ValueError, match=r"T: every step is nan"):
        net.loss(X, np.full((1, 2, 1), np.nan))
    two = emitted(spec_from_data({**_two_outputs(), "name": "two"}, "two.yaml"), tmp_path).Network()
    with pytest.raises(ValueError, match=r"T: row 0, step 1 is nan for some outputs only"):
        two.loss(X, np.array([[[np.nan, 1.0], [0.5, 0.5]]]))


def _two_outputs():
    return {"inputs": ["x1"], "steps": 2,
            "layers": [{"name": "h", "kind": "rnn", "units": 1, "activation": "tanh"}, {"name": "y", "units": 2, "activation": "identity"}],
            "loss": "half_sse", "seed": 1}
