"""Checker throughput against one plain jieba pass over the same agent text.

Builds a 20x replicated copy of ../shared/data/transcripts_sample.jsonl, then times,
as whole processes (interpreter start, imports and dictionary load included):

  A. the coach: `run_check([file], "json", [], "info", os.devnull)`
  B. plain jieba: `jieba.lcut(text)` over every agent turn of the same file

Each is run 3 times, interleaved; medians are reported. Usage:

    python bench/coach_speed.py [--copies 20] [--runs 3] [--no-cache]

`--no-cache` also times the coach with its segmentation cache disabled (in the
replicated file every turn recurs 20 times, which the cache exploits).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "transcripts_sample.jsonl"

COACH = """
import os, sys
sys.path.insert(0, {root!r})
from coach import textview
if {no_cache}:
    textview.set_cache_limit(0)
from coach.report import run_check
code = run_check([{path!r}], "json", [], "info", os.devnull)
sys.exit(0 if code in (0, 1) else code)
"""
JIEBA = """
import json, logging, jieba
jieba.setLogLevel(logging.WARNING)
n = 0
with open({path!r}, encoding="utf-8") as fh:
    for line in fh:
        for t in json.loads(line)["turns"]:
            if t["role"] == "agent":
                n += len(jieba.lcut(t["text"]))
"""


def timed(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args()
    lines = DATA.read_text(encoding="utf-8").splitlines()
    agent_turns = agent_chars = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / f"sample_x{args.copies}.jsonl")
        with open(path, "w", encoding="utf-8") as out:
            for k in range(args.copies):
                for line in lines:
                    rec = json.loads(line)
                    rec["id"] = f"{rec['id']}-{k}"
                    for t in rec["turns"]:
                        if t["role"] == "agent":
                            agent_turns += 1
                            agent_chars += len(t["text"])
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        jobs = {
            "coach": COACH.format(root=str(ROOT), path=path, no_cache=False),
            "jieba": JIEBA.format(path=path),
        }
        if args.no_cache:
            jobs["coach (no cache)"] = COACH.format(root=str(ROOT), path=path, no_cache=True)
        timed(jobs["jieba"])  # warm the jieba dictionary cache file and the OS page cache
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(args.runs):
            for name, code in jobs.items():
                times[name].append(timed(code))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"input: {args.copies}x transcripts_sample.jsonl = {len(lines) * args.copies} conversations, "
        f"{agent_turns} agent turns, {agent_chars} agent characters"
    )
    print(f"runs: {args.runs} per process, median wall time (whole process)\n")
    print(f"{'process':<18}{'median s':>10}{'agent turns/s':>15}{'ratio to jieba':>16}")
    for name in jobs:
        print(
            f"{name:<18}{med[name]:>10.2f}{agent_turns / med[name]:>15.0f}"
            f"{med[name] / med['jieba']:>16.2f}"
        )
    print("\ntarget: coach <= 0.50x one plain jieba pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
