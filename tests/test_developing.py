"""DEVELOPING.md stays true: every file it names exists, every C kernel family
(``csrc/core/*.c``) has a row in its table of families, and every binding, C
test, op, twin and benchmark file of the tree is named somewhere on the page."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = "| family | C core | binding | op | twin | tests | C tests | benchmark |"
PATH = re.compile(r"`((?:csrc|python|tests|benchmarks|notebooks|\.ci)/[^`\s]*)`")


def text():
    return (REPO / "DEVELOPING.md").read_text(encoding="utf-8")


def family_table():
    """{family: [cell, ...]} of the table headed HEADER."""
    lines = text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == HEADER]
    assert len(starts) == 1, f"DEVELOPING.md must hold exactly one table headed {HEADER!r}"
    n = HEADER.count("|") - 1
    rows = {}
    for line in lines[starts[0] + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == n, line
        rows[cells[0]] = cells[1:]
    return rows


def test_every_named_file_exists():
    named = {p for p in PATH.findall(text()) if not set(p) & set("<*|")}  # patterns like bench_<family>.py aside
    assert len(named) > 40  # the table and the notes were found
    missing = sorted(p for p in named if not (REPO / p.rstrip("/")).exists())
    assert not missing, f"DEVELOPING.md names files that do not exist: {missing}"


def test_every_core_family_has_its_row():
    rows = family_table()
    for c in sorted((REPO / "csrc" / "core").glob("*.c")):
        assert c.stem in rows, f"csrc/core/{c.name}: family {c.stem!r} has no row in DEVELOPING.md"
        assert f"`csrc/core/{c.name}`" in rows[c.stem][0], f"the {c.stem} row does not name csrc/core/{c.name}"
    for family, cells in rows.items():
        assert (REPO / "csrc" / "core" / f"{family}.c").is_file(), f"row {family!r} is not a csrc/core family"
        # each column names a file or says why there is none
        for cell in cells:
            assert PATH.search(cell) or cell.startswith("none"), f"{family}: empty cell {cell!r}"


def test_every_kernel_file_of_the_tree_is_on_the_page():
    page = text()
    kinds = [("csrc/core", "*"), ("csrc/python", "*"), ("csrc/tests", "*"), ("python/tasklle/ops", "*.py"),
             ("python/tasklle/reference", "*.py"), ("benchmarks", "*.py")]
    absent = []
    for folder, pattern in kinds:
        for f in sorted((REPO / folder).glob(pattern)):
            if not f.is_file() or f.name == "__init__.py" or f.suffix not in (".c", ".h", ".py"):
                continue
            rel = f"{folder}/{f.name}"
            if f"`{rel}`" not in page:
                absent.append(rel)
    assert not absent, f"DEVELOPING.md does not name: {absent}"


def test_the_readme_links_it():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    assert "DEVELOPING.md" in layout
