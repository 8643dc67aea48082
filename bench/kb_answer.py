"""知识库中有答案 (core/kb_answer.py): how often it fires and on what.

Loads the starter articles (articles/) into a temporary instance, audits the
conversations of transcripts_sample.jsonl through the real path (an audit run whose
AuditStore links the answering article), then prints: how many findings could fire
(the agent did not know or hedged, or sent the customer away), the score distribution
of their best answering article, the fire rate per threshold, and every firing at the
chosen threshold (question, agent turn, article title) for a human to judge.

    .venv/bin/python bench/kb_answer.py [DATA_DIR] [--threshold T] [--below N] [--json]

DATA_DIR defaults to ../shared/data; `--below N` also lists the N best candidates
under the threshold (the near misses).  Measured (session 6, threshold 15): 23 firings
in 22 of 492 conversations; judged by hand, 8 of the 23 link an article that answers
the question, 8 of the top 30 (threshold 8.8); see core/kb_answer.py THRESHOLD.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from coach.audits import AuditStore  # noqa: E402
from coach.checker import Checker  # noqa: E402
from coach.transcripts import load_path  # noqa: E402
from core import Settings, open_instance  # noqa: E402
from core.kb_answer import THRESHOLD, KbAnswers, triggers  # noqa: E402

THRESHOLDS = (5, 10, 15, 20, 25, 30, 35, 40, 50)
# the words of the agent saying they do not know (the rest of the vague findings hedge)
NOT_KNOWING = ("清楚", "知道", "了解", "懂", "确定", "确认", "获知", "得知")
CLIP = 70  # characters of a question or agent turn in the listing


def clip(text: str, n: int = CLIP) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def quantiles(scores: list[float]) -> str:
    if len(scores) < 10:
        return "  ".join(f"{s:.1f}" for s in sorted(scores))
    q = statistics.quantiles(scores, n=10)
    return (
        f"min {min(scores):.1f}  p10 {q[0]:.1f}  p25 {statistics.quantiles(scores, n=4)[0]:.1f}  "
        f"median {statistics.median(scores):.1f}  p75 {statistics.quantiles(scores, n=4)[2]:.1f}  "
        f"p90 {q[-1]:.1f}  max {max(scores):.1f}"
    )


def audit(path: Path, work: Path) -> tuple[int, list[dict]]:
    """Audit the transcripts with every candidate linked (threshold 0); returns the
    number of conversations and one record per finding that could fire."""
    services = open_instance(Settings(instance=work / "instance"))
    report = services.kb.import_dir(REPO / "articles")
    if report.failed:
        sys.exit(f"articles/ did not import: {report.errors[:3]}")
    convs, errors = load_path(str(path))
    store = AuditStore(services.kb.store, annotate=KbAnswers(services.kb, threshold=0).annotate)
    run_id = store.create_run("bench", convs, errors, by="bench", reaudit=True)
    store.claim(run_id)
    store.check(run_id, Checker())
    out = []
    for item in store.items(run_id, limit=len(convs) + 1):
        full = store.item(item["id"])
        turns = full["conversation"]["turns"]
        for f in full["findings"]:
            if not triggers(f):
                continue
            answer = f.get("kb_answer")
            out.append(
                {
                    "conv": item["conv_id"],
                    "turn": f["turn"],
                    "rule": f["rule"],
                    "match": f["match"],
                    "agent_text": turns[f["turn"]]["text"],
                    "question": (answer or {}).get("question", ""),
                    "score": answer["score"] if answer else 0.0,
                    "title": answer["title"] if answer else "",
                }
            )
    services.close()
    return len(convs), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--below", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the firings as JSON lines")
    args = parser.parse_args()
    path = args.data / "transcripts_sample.jsonl" if args.data.is_dir() else args.data
    if not path.is_file():
        sys.exit(f"no transcripts at {path}")
    with tempfile.TemporaryDirectory() as tmp:
        total, found = audit(path, Path(tmp))
    scored = [r for r in found if r["score"] > 0]
    fired = sorted((r for r in found if r["score"] >= args.threshold), key=lambda r: -r["score"])
    convs = {r["conv"] for r in fired}
    print(f"{path}: {total} conversations")
    print(
        f"findings that could fire (vague: did not know or hedged; improper: sent away): {len(found)} "
        f"in {len({r['conv'] for r in found})} conversations; "
        f"with a customer question and any article hit: {len(scored)}"
    )
    print(f"best article score of those: {quantiles([r['score'] for r in scored])}")
    print("\nthreshold | fires | of candidates | conversations")
    for t in sorted({*THRESHOLDS, args.threshold}):
        n = [r for r in found if r["score"] >= t]
        share = len(n) / len(found) if found else 0.0
        print(f"{t:>9g} | {len(n):>5} | {share:>13.0%} | {len({r['conv'] for r in n}):>13}")
    print(
        f"\nat threshold {args.threshold:g}: {len(fired)} firings in {len(convs)} conversations "
        f"({len(convs) / total:.1%} of conversations, {len(fired) / max(len(found), 1):.0%} "
        "of the candidate findings)"
    )
    for name, keep in (
        (
            "did not know (不清楚 / 不知道 / 不确定 …)",
            lambda r: any(w in r["match"] for w in NOT_KNOWING),
        ),
        ("sent away (improper)", lambda r: r["rule"].startswith("improper")),
    ):
        print(f"  {name}: {sum(map(keep, fired))} of {sum(map(keep, found))} candidates")
    print()
    for n, r in enumerate(fired, 1):
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        print(
            f"{n:>3}. [{r['score']:.1f}] 《{r['title']}》  {r['conv'][:17]} 第{r['turn'] + 1}句 {r['rule']}「{r['match']}」"
        )
        print(f"     客户: {clip(r['question'])}")
        print(f"     客服: {clip(r['agent_text'])}")
    near = sorted((r for r in scored if r["score"] < args.threshold), key=lambda r: -r["score"])[
        : args.below
    ]
    if near and not args.json:
        print(f"\nbest {len(near)} under the threshold:")
        for r in near:
            print(f"  [{r['score']:.1f}] 《{r['title']}》 客户: {clip(r['question'], 50)}")
            print(f"         客服: {clip(r['agent_text'], 50)}")


if __name__ == "__main__":
    main()
