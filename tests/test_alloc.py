"""tasklle._alloc: the glibc settings are in force from ``import tasklle`` on
(a user's own loop gets them, not only tasklle's entry points), the entry
points keep them and trim on exit, they can be turned off (before or after
import) and back on, and they do nothing without glibc.

mallopt is process-wide, so each check runs in a fresh subprocess. What is
read back are counts, not timings: glibc's number of mmapped blocks
(mallinfo2().hblks) while a 40 MiB block is held -- 40 MiB is above the
largest mmap threshold glibc ever uses on its own (32 MiB), so by default it
is always mmapped -- and minor page faults over repeated allocations.
"""
import json
import subprocess
import sys
import textwrap

import pytest
from conftest import package_env


PROBE = textwrap.dedent("""
    import ctypes, json, resource, sys, threading
    import tasklle
    from tasklle import _alloc

    libc = ctypes.CDLL(None)

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    SIZE = 40 << 20

    def mmapped_while_held_size(size):
        before = libc.mallinfo2().hblks
        p = libc.malloc(size)
        during = libc.mallinfo2().hblks
        libc.free(p)
        return during - before

    def mmapped_while_held():
        # 1 if a 40 MiB block is served by mmap, 0 if from the heap
        before = libc.mallinfo2().hblks
        p = libc.malloc(SIZE)
        during = libc.mallinfo2().hblks
        libc.free(p)
        return during - before

    def faults(n=6, size=SIZE):
        # minor faults of this thread over n malloc/touch/free rounds
        r0 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for _ in range(n):
            p = libc.malloc(size)
            ctypes.memset(p, 1, size)
            libc.free(p)
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - r0

    def in_thread(fn):
        out = []
        t = threading.Thread(target=lambda: out.append(fn()))
        t.start()
        t.join()
        return out[0]

    def rss_pages():
        return int(open("/proc/self/statm").read().split()[1])

    # right after import, outside any tasklle entry point: a user's own loop
    res = {"before": mmapped_while_held(), "faults_before": faults(), "active_before": _alloc.active()}
    res["thread_faults_before"] = in_thread(lambda: faults(size=16 << 20))
    with _alloc.fast_alloc():
        res["active"] = _alloc.active()
        res["inside"] = mmapped_while_held()
        res["faults_inside"] = faults()
        with _alloc.fast_alloc():  # nested: still on
            res["nested"] = mmapped_while_held()
        res["after_nested"] = mmapped_while_held()
        res["thread_faults_inside"] = in_thread(lambda: faults(size=16 << 20))
        # the documented caveat: above a thread arena's 64 MiB heap segment glibc
        # still maps the block (it falls back to mmap even with M_MMAP_MAX = 0)
        res["thread_100mib_mmapped_inside"] = in_thread(lambda: mmapped_while_held_size(100 << 20))
        # hold 240 MiB of freed heap memory when leaving the scope
        blocks = [libc.malloc(SIZE) for _ in range(6)]
        for b in blocks:
            ctypes.memset(b, 1, SIZE)
        for b in blocks:
            libc.free(b)
        res["rss_inside_pages"] = rss_pages()
    res["rss_after_pages"] = rss_pages()
    res["after"] = mmapped_while_held()
    res["active_after"] = _alloc.active()
    res["faults_after"] = faults()
    # the user turns it off after import: glibc as it is, and an entry point keeps it off
    tasklle.set_fast_alloc(False)
    res["off"] = mmapped_while_held()
    res["faults_off"] = faults()
    with _alloc.fast_alloc():
        res["off_inside"] = mmapped_while_held()
        res["off_active_inside"] = _alloc.active()
    res["off_after"] = mmapped_while_held()
    # and back on
    tasklle.set_fast_alloc(True)
    res["on_again"] = mmapped_while_held()
    res["faults_on_again"] = faults()
    print(json.dumps(res))
""")


def run_probe(env_extra=None, prelude=""):
    env = package_env(OMP_NUM_THREADS="1")
    env.pop("GLIBC_TUNABLES", None)
    env.pop("TASKLLE_FAST_ALLOC", None)
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", prelude + PROBE], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_mallinfo2():
    import ctypes

    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")
    except OSError:
        return False


glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not _has_mallinfo2(),
                                reason="needs glibc >= 2.33 (mallinfo2)")

PAGES = (40 << 20) // 4096


@glibc_only
def test_settings_in_force_from_import_for_any_caller():
    r = run_probe()
    # outside any entry point, right after import: no mmap, the block is reused
    assert r["active_before"] and r["before"] == 0
    assert r["faults_before"] <= 1.2 * PAGES  # default glibc: >= 6 x PAGES (every round faults it in)
    assert r["thread_faults_before"] <= 1.2 * (16 << 20) // 4096  # a second thread's arena too
    # inside an entry point's scope, nested, and after it: still in force
    assert r["active"] and r["active_after"]
    assert r["inside"] == 0 and r["nested"] == 0 and r["after_nested"] == 0 and r["after"] == 0
    assert r["faults_inside"] <= 1.2 * PAGES and r["faults_after"] <= 1.2 * PAGES
    assert r["thread_faults_inside"] <= 1.2 * (16 << 20) // 4096
    assert r["thread_100mib_mmapped_inside"] == 1  # served (by mmap), not refused
    # malloc_trim on leaving the outermost scope hands the freed 240 MiB back
    assert r["rss_inside_pages"] - r["rss_after_pages"] >= 0.8 * 6 * PAGES
    # turned off after import: glibc's values are back, and an entry point does not override the choice
    assert r["off"] == 1 and r["off_inside"] == 1 and r["off_after"] == 1 and not r["off_active_inside"]
    assert r["faults_off"] >= 5 * PAGES
    # and on again
    assert r["on_again"] == 0 and r["faults_on_again"] <= 1.2 * PAGES


@glibc_only
def test_glibc_tunables_are_what_off_sets_back():
    # the user started the process with their own threshold: turning tasklle's settings off restores it
    r = run_probe({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=268435456"})
    assert r["before"] == 0 and r["after"] == 0
    assert r["off"] == 0  # 40 MiB is below the user's 256 MiB threshold: heap, as they set it


@glibc_only
@pytest.mark.parametrize("how", ["env", "api"])
def test_turning_it_off_before_import_work(how):
    if how == "env":
        r = run_probe({"TASKLLE_FAST_ALLOC": "0"})
    else:
        # the opt-out before any tensor work: right after import
        r = run_probe(prelude="import tasklle\ntasklle.set_fast_alloc(False)\n")
    assert r["before"] == 1 and r["inside"] == 1 and r["nested"] == 1 and r["after"] == 1
    assert not r["active_before"] and not r["active"]
    assert r["faults_before"] >= 5 * PAGES and r["faults_inside"] >= 5 * PAGES


def test_noop_without_glibc(monkeypatch):
    from tasklle import _alloc

    monkeypatch.setattr(_alloc, "_libc", None)
    monkeypatch.setattr(_alloc, "_libc_checked", True)
    assert _alloc.glibc_version() is None
    assert not _alloc.enabled()
    with _alloc.fast_alloc():
        assert not _alloc.active()
    assert _alloc.trim() is False
    assert _alloc.describe().startswith("off (not glibc")


def test_set_fast_alloc_validates_and_show_config_reports(monkeypatch):
    import io

    import tasklle
    from tasklle import _alloc

    with pytest.raises(TypeError, match="on must be"):
        tasklle.set_fast_alloc("yes")
    monkeypatch.setattr(_alloc, "_enabled", None)
    buf = io.StringIO()
    tasklle.show_config(file=buf)
    assert "fast alloc" in buf.getvalue()
    if _alloc.glibc_version() is not None:
        tasklle.set_fast_alloc(False)
        buf = io.StringIO()
        tasklle.show_config(file=buf)
        assert "fast alloc        off (set_fast_alloc()" in buf.getvalue()
        tasklle.set_fast_alloc(None)
        buf = io.StringIO()
        tasklle.show_config(file=buf)
        assert "for the whole process since import" in buf.getvalue()


def test_entry_points_are_scoped():
    """Every training / inference entry point runs inside the scope."""
    import importlib

    # import_module: a package attribute of the same name may be the function (tasklle.train.joint)
    dk, dd, en, ec, td, tdet, tj, tu = (importlib.import_module(f"tasklle.{m}") for m in (
        "darkening", "dataset_darkening", "enhancement", "detection", "train.darkener", "train.detector",
        "train.joint", "train.upstream"))

    for fn in (tj.joint, tu.train_upstream, td.train_darkener, tdet.train_detector, en.enhance, en.enhance_folder,
               dk.darken, dd.darken_dataset, ec.detect_split):
        assert getattr(fn, "__wrapped__", None) is not None, fn.__qualname__


def test_scope_is_active_during_enhance(monkeypatch):
    import torch

    from tasklle import _alloc
    from tasklle.enhancement import enhance

    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            seen.append(_alloc.active())
            return x, x

    monkeypatch.setattr(_alloc, "_enabled", True)
    enhance(torch.rand(3, 8, 8), model=Probe())
    assert seen == [_alloc.glibc_version() is not None]
    assert _alloc.active() == (_alloc.glibc_version() is not None)  # in force for the process, not only the call
