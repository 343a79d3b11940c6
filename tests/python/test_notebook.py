"""A real notebook: cells executed by nbclient on an ipykernel, as Jupyter runs
them. Functions defined in a cell have no module that workers can import: they
cross by value."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "import os\nimport interpool\nfrom interpool import interpreters",
    "offset = 100\n\ndef shifted(x):\n    return x + offset",
    "def square(x):\n    return shifted(x) * 2",
    (
        "with interpool.Executor(2) as ex:\n"
        "    squares = list(ex.map(square, range(5)))\n"
        "    lambdas = list(ex.map(lambda x: -x, range(3)))\n"
        "    here = ex.submit(lambda: (os.getpid(), interpreters.get_current().id)).result()\n"
        "print(squares, lambdas, here[0] == os.getpid(), here[1] != 0)"
    ),
]


def test_functions_of_notebook_cells_run_on_workers(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = nb.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    assert text.strip() == "[200, 202, 204, 206, 208] [0, -1, -2] True True"
