"""The fuzz suite: every C-backed op and every raw ``tasklle._C`` function with
wrong dtypes (int, float16, bool, complex, big-endian), wrong ndim and shapes,
empty inputs, strided, reversed and negative views, NaN/inf, overlapping and
read-only outputs, huge sizes and out-of-range scalars, plus property-based
cases (hypothesis: random shapes and values, C vs twin; cases and oracles:
tests/fuzz/fuzz_cases.py).

The cases run in a few subprocesses (batched: importing torch dominates), so
a crash fails this test instead of killing pytest; a case that crashes or
hangs is recorded and the rest go on in a fresh process. The test fails on
any crash, hang, silent wrong result or unclean exception, and prints the
counts (``pytest -s`` shows them)."""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import package_env

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

N_PROCESSES = 2
CASE_TIMEOUT = 30.0  # seconds a single case may take before it counts as a hang


def _run_batch(ids, workdir, tag):
    """Run ids in subprocesses until every id has an outcome; returns {id: (outcome, detail)}."""
    results, remaining, attempt = {}, list(ids), 0
    # hypothesis keeps a cache directory: in the test's temporary folder, not the checkout
    env = package_env(OMP_NUM_THREADS="1", HYPOTHESIS_STORAGE_DIRECTORY=str(workdir / "hypothesis"))
    while remaining:
        attempt += 1
        ids_file, out_file = workdir / f"{tag}-{attempt}.ids", workdir / f"{tag}-{attempt}.out"
        ids_file.write_text("\n".join(remaining) + "\n")
        proc = subprocess.Popen([sys.executable, str(HERE / "fuzz_runner.py"), str(ids_file), str(out_file)],
                                env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        hung = False
        try:
            # the whole batch gets a generous limit; a hang is one case over CASE_TIMEOUT
            _, err = proc.communicate(timeout=CASE_TIMEOUT + 2.0 * len(remaining))
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            hung = True
        started = None
        if out_file.exists():
            for line in out_file.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if "start" in rec:
                    started = rec["start"]
                else:
                    results[rec["done"]] = (rec["outcome"], rec["detail"])
                    started = None
        if started is not None:
            kind = "hang" if hung else "crash"
            results[started] = (kind, f"exit status {proc.returncode}: {err.decode(errors='replace')[-400:]}")
        elif proc.returncode != 0 and not hung and len(results) < len(ids):
            pytest.fail(f"fuzz runner failed before any case: {err.decode(errors='replace')[-2000:]}")
        remaining = [i for i in remaining if i not in results]
    return results


def test_fuzz_c_ops_and_raw_functions(tmp_path):
    from fuzz_cases import all_case_ids

    ids = all_case_ids()
    assert len(set(ids)) == len(ids)
    chunks = [ids[k::N_PROCESSES] for k in range(N_PROCESSES)]
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(N_PROCESSES) as pool:
        parts = list(pool.map(lambda kc: _run_batch(kc[1], tmp_path, f"b{kc[0]}"), enumerate(chunks)))
    results = {}
    for p in parts:
        results.update(p)
    counts = collections.Counter(o for o, _ in results.values())
    tried = len(results) - counts["skip"]
    summary = {"cases tried": tried, "clean errors": counts["clean"], "accepted and right": counts["ok"],
               "crashes": counts["crash"], "hangs": counts["hang"], "silent wrong results": counts["wrong"],
               "unclean exceptions": counts["unclean"]}
    print("\nfuzz counts:", json.dumps(summary))
    report = os.environ.get("TASKLLE_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    bad = {i: r for i, r in results.items() if r[0] in ("crash", "hang", "wrong", "unclean")}
    assert not bad, "\n".join(f"{i}: {o}: {d}" for i, (o, d) in sorted(bad.items())[:40])
    assert counts["ok"] > 50 and counts["clean"] > 500  # the suite did run the cases
    assert all(results[f"hyp|{n}"][0] == "ok" for n in ("box_ops", "curve", "losses", "wider"))


def test_every_c_function_is_fuzzed():
    """A new raw _C function needs a Spec in fuzz_cases.SPECS (a valid call, its
    outputs and scalar kinds) so the suite above covers it too."""
    from fuzz_cases import SPEC

    from tasklle import _C

    covered = set(SPEC) | {"get_num_threads", "build_info"}
    public = {n for n in dir(_C) if not n.startswith("_") and callable(getattr(_C, n))}
    assert public - covered == set(), f"raw _C functions without a fuzz Spec: {sorted(public - covered)}"
