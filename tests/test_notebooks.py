"""The three tutorial notebooks run top to bottom on the built-in data with
the tiny budget (TASKLLE_NB_BUDGET=tiny), in a fresh kernel each."""
import os
from pathlib import Path

import pytest

import tasklle

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_darkening.ipynb", "02_joint_training.ipynb", "03_wider_evaluation.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path, tmp_path_factory, monkeypatch):
    nb = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs must be cleared"
    env = {
        "TASKLLE_NB_BUDGET": "tiny",
        "TASKLLE_NB_WORK": str(tmp_path / "work"),
        "TASKLLE_NB_THREADS": "1",
        # one cache per test session: the tiny dataset is built once
        "TASKLLE_CACHE": str(tmp_path_factory.getbasetemp() / "tasklle-cache"),
        "TASKLLE_PROGRESS": "0",
        # the kernel imports the same tasklle as this test (installed, or the in-place dev build)
        "PYTHONPATH": os.pathsep.join(p for p in (str(Path(tasklle.__file__).parents[1]),
                                                  os.environ.get("PYTHONPATH")) if p),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows the figures
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 2, f"{name} shows no figures"
