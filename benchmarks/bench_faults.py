"""Fault sweep: corrupt inputs systematically and count how each case ends.

    .venv/bin/python benchmarks/bench_faults.py [--per-file 30] [--no-real] [--only SUBSTR] [--show crashed,silent]

Prints: cases tried / ok (input still usable) / clean error / skipped (listed) / silent (bad
input accepted or dropped without a word) / crashed (traceback, dead process, hang), then one
line per case of the categories named by ``--show``.  The harness is ``tests/_fault_matrix.py``
(cases: ``tests/_fault_cases.py``);
``tests/test_faults.py`` runs a bounded set of the same cases in CI.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import _fault_matrix as fm  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-file", type=int, default=30, help="truncations (and flips) per base file")
    ap.add_argument("--no-real", action="store_true", help="leave out copies of ../shared/data/real files")
    ap.add_argument("--only", help="run only cases whose id contains this")
    ap.add_argument("--show", default="crashed,silent", help="categories to list case by case")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a case counts as a hang")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        bases_dir = Path(tmp) / "bases"
        bases = fm.make_bases(bases_dir, real=not args.no_real)
        cases = fm.all_cases(bases_dir, bases, args.per_file)
        if args.only:
            cases = [c for c in cases if args.only in c.id]
        t0 = time.perf_counter()
        outcomes = fm.run_matrix(cases, bases_dir, timeout_s=args.timeout)
        wall = time.perf_counter() - t0
    c = fm.counts(outcomes)
    print(f"cases tried {c['tried']} / ok {c['ok']} / clean error {c['clean']} / skipped {c['skipped']} / "
          f"silent {c['silent']} / crashed {c['crashed']}   ({wall:.0f} s)")
    by_kind = collections.defaultdict(collections.Counter)
    for o in outcomes:
        by_kind[o.case.id.split(":")[0]][o.category] += 1
    for kind, cnt in sorted(by_kind.items()):
        print(f"  {kind:34s} " + "  ".join(f"{k} {cnt[k]}" for k in fm.CATEGORIES if cnt[k]))
    show = {s.strip() for s in args.show.split(",") if s.strip()}
    for o in outcomes:
        if o.category in show:
            print(f"[{o.category}] {o.case.id}: {o.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
