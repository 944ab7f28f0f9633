"""examples/worked_example.ipynb, run top to bottom in a real kernel (nbclient with ipykernel), as
a user runs it from examples/: every cell runs without error and shows what it is there to show.
The notebook is committed without outputs; this test makes them."""

from __future__ import annotations

import json
import os

import pytest

from helpers import ROOT, optional

NOTEBOOK = ROOT / "examples" / "worked_example.ipynb"
MISSING = [name for name in ("nbclient", "nbformat", "ipykernel", "matplotlib") if optional(name) is None]


def test_the_notebook_is_committed_clean() -> None:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (pip install '.[notebook]')")
def test_the_worked_example_notebook_runs_in_a_kernel() -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel imports this tree's chainrule, as the tests do
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "examples")}})
    executed = client.execute(env=env)
    outputs = {}
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            assert output.output_type != "error", f"{cell.source}: {output.get('ename')}: {output.get('evalue')}"
        outputs[cell.source.splitlines()[-1]] = cell.outputs

    def data(line: str, mime: str) -> str:
        found = [o["data"][mime] for o in outputs[line] if "data" in o and mime in o["data"]]
        assert found, (line, [list(o.get("data", {})) for o in outputs[line]])
        return found[0]

    assert data("chainrule.__version__", "text/plain").strip("'")[0].isdigit()
    derivation = data("d", "text/html")
    assert derivation.startswith('<div class="chainrule">') and "0.298371109" in derivation and "<math" in derivation
    assert "text/latex" in outputs["d"][0]["data"] and "text/markdown" in outputs["d"][0]["data"]
    printed = "".join(o.get("text", "") for o in outputs['print(d.loss, d.gradients["w5"], d.updated["w5"])'])
    assert printed.startswith("0.29837110876") and "0.0821670405" in printed
    chain = data('d.chain("w5")', "text/html")
    assert "0.35891648" in chain and "One step of sgd" in chain
    assert "check passed" in data("chainrule.check(spec)", "text/html")
    verdicts = data("chainrule.verify(spec, claims)", "text/html")
    assert "1 of 2 right" in verdicts and "σ′ taken as σ" in verdicts
    history = data("history", "text/html")
    assert "2000 epochs" in history and "data:image/png;base64," in history
    assert data("history.plot();", "image/png")
    assert "array([" in data("history.network.predict([0.05, 0.10])", "text/plain")
