"""The README's Python quick start runs as written (on the built-in data and the
shipped weights), in a fresh interpreter in an empty folder."""
import re
import subprocess
import sys
from pathlib import Path

from conftest import package_env

REPO = Path(__file__).resolve().parents[1]


def quick_start():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start (Python / Jupyter)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert len(blocks) == 1, "the quick start must hold exactly one python block"
    return blocks[0]


def test_readme_quick_start_runs(tmp_path, tmp_path_factory):
    code = quick_start()
    env = package_env(TASKLLE_CACHE=str(tmp_path_factory.getbasetemp() / "tasklle-cache"),
                      TASKLLE_PROGRESS="0", MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert lines[-4:-2] == ["| group | easy | medium | hard |", "|---|---|---|---|"], res.stdout
    assert lines[-2].startswith("| low-light | ") and lines[-1].startswith("| joint (2 steps) | "), res.stdout
    assert (tmp_path / "quickstart" / "joint" / "final.pt").is_file()
