"""Run fuzz cases in this process: ``python fuzz_runner.py IDS_FILE OUT_FILE``.

Before each case its id goes to OUT_FILE as a ``start`` line (flushed), after it
a ``done`` line with the outcome; so when the process dies or hangs, the
driver knows exactly which case did it."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(ids_file, out_file):
    import torch

    torch.set_num_threads(1)
    from fuzz_cases import run_case

    from tasklle import _C

    _C.set_num_threads(1)
    with open(ids_file) as f:
        ids = [line.rstrip("\n") for line in f if line.strip()]
    with open(out_file, "a", buffering=1) as out:
        for cid in ids:
            out.write(json.dumps({"start": cid}) + "\n")
            out.flush()
            outcome, detail = run_case(cid)
            out.write(json.dumps({"done": cid, "outcome": outcome, "detail": detail[:500]}) + "\n")
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
