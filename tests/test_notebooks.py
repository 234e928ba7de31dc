"""The three tutorial notebooks: the committed files are what notebooks/generate.py
writes (same cells, executed, with figures, small), they use tasklle's public API
only, and they run top to bottom on the built-in data with the tiny budget
(TASKLLE_NB_BUDGET=tiny), in a fresh kernel each."""
import importlib.util
import os
import re
from pathlib import Path

import pytest

import tasklle

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_darkening.ipynb", "02_joint_training.ipynb", "03_wider_evaluation.ipynb"]
MAX_BYTES = 400_000  # "a few hundred KB at most"


def _generator():
    spec = importlib.util.spec_from_file_location("notebooks_generate", REPO / "notebooks" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pngs(nb):
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_generated_and_executed(name):
    path = REPO / "notebooks" / name
    committed = nbformat.read(str(path), as_version=4)
    expected = _generator().build(name)
    assert [(c.cell_type, c.source) for c in committed.cells] == \
        [(c.cell_type, c.source) for c in expected.cells], \
        f"{name} is stale: run python notebooks/generate.py --execute --budget small"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{name} is not executed"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name} was saved with an error: {errors[0].get('ename')}"
    assert _pngs(committed) >= 2, f"{name} carries no figures"
    assert path.stat().st_size <= MAX_BYTES, f"{name} is {path.stat().st_size} bytes"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_uses_the_public_api_only(name):
    nb = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "experiments.common" not in code
    assert not re.search(r"\btasklle(\.\w+)*\._\w", code), "a private tasklle name"
    for line in code.splitlines():
        m = re.match(r"\s*from\s+(tasklle[\w.]*)\s+import\s+(.*)", line)
        if m:
            assert not re.search(r"(^|[\s,(])_\w", m.group(2)), f"private import: {line}"
            assert not any(part.startswith("_") for part in m.group(1).split(".")), line


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path, tmp_path_factory, monkeypatch):
    nb = _generator().build(name)  # the committed cells (checked above), outputs cleared
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
    assert _pngs(nb) >= 2, f"{name} shows no figures"
