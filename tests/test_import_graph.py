"""No import circle inside ``tasklle``: neither at module level nor through the
imports inside functions.

The graph is built from the source with ``ast`` (nothing is imported):
every ``import`` / ``from ... import`` statement anywhere in a module (module
level, functions, methods) is an edge to the module it names, relative
imports resolved. ``from pkg import name`` is also an edge to the submodule
``pkg.name`` when that is a module, or to the module a package's lazy map
(``{'name': '.module'}`` in its ``__init__``) loads ``name`` from. Importing
a module also runs its parents' ``__init__``; those implicit edges are left
out, and so is ``from <a package above> import x``'s edge to that package
(it is always imported before the module: every submodule would otherwise
close a circle with its package).
"""
import ast
from pathlib import Path

import tasklle

ROOT = Path(tasklle.__file__).resolve().parent


def _modules():
    """{dotted name: (path, is_package)} of every module under ROOT."""
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("tasklle",) + path.relative_to(ROOT).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def _resolve(module, is_pkg, level, name):
    """The absolute name of ``from <level dots><name>`` written in ``module``."""
    if level == 0:
        return name
    base = module.split(".")
    base = base if is_pkg else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _lazy_maps(mods):
    """{package: {name: module}} from the dict literals of str -> '.module' in package __init__s."""
    maps = {}
    for mod, (path, is_pkg) in mods.items():
        if not is_pkg:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and node.keys and all(
                    isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys) and all(
                    isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value.startswith(".")
                    for v in node.values):
                for k, v in zip(node.keys, node.values):
                    rel = v.value
                    level = len(rel) - len(rel.lstrip("."))
                    maps.setdefault(mod, {})[k.value] = _resolve(mod, True, level, rel.lstrip("."))
    return maps


def import_graph():
    """{module: {imported module, ...}} over the modules of the package."""
    mods = _modules()
    lazy = _lazy_maps(mods)
    graph = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = _resolve(mod, is_pkg, node.level, node.module or "")
                # a package above this module is already imported (left out as above)
                targets = [] if mod.startswith(src + ".") else [src]
                for a in node.names:
                    sub = f"{src}.{a.name}"
                    if sub in mods:
                        targets.append(sub)
                    elif a.name in lazy.get(src, {}):
                        targets.append(lazy[src][a.name])
            graph[mod].update(t for t in targets if t in mods and t != mod)
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_imports():
    """The walk finds module-level, relative, function-level and lazy-map imports."""
    g = import_graph()
    assert "tasklle.io" in g["tasklle.models.tinaface.detector"]  # from ...io import (module level)
    assert "tasklle.models.tinaface.postprocess" in g["tasklle.models.tinaface.detector"]  # from . import pp
    assert "tasklle.losses.zero_dce_loss" in g["tasklle.train.darkener"]  # inside train_darkener
    assert "tasklle.models.zero_dce_pp" in g["tasklle.train.joint"]  # from ..models import ZeroDCEPP (lazy map)


def test_cycles_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles inside tasklle: " + "; ".join(" <-> ".join(c) for c in found)
