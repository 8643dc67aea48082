"""Content gaps: how well a score threshold tells questions the knowledge base answers
from questions it does not (core/gaps.py ANSWER_THRESHOLD).

1. The fixture articles (tests/fixtures/articles) with the questions of
   tests/test_gaps.py: the threshold's source.
2. AFQMC (../shared/data faq_docs_dev + faq_eval_dev, 花呗/借呗 questions): the
   paraphrase clusters are split in two by a hash; the gold questions of one half are
   removed from the knowledge base, so its queries have no answer, the other half's do.
   For each threshold: the share of unanswerable queries flagged (found gaps) and the
   share of answerable ones flagged (false gaps).  Measured: the two distributions
   overlap almost entirely (medians 65 and 69): a near miss in a domain the knowledge
   base covers scores like an answer, so the threshold finds questions outside what
   the articles cover, not paraphrases of what they nearly cover.

    .venv/bin/python bench/gap_threshold.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.gaps import ANSWER_THRESHOLD, best_answer  # noqa: E402
from kb.service import KnowledgeBase  # noqa: E402

THRESHOLDS = (2, 4, 6, 8, 10, 12, 15, 20)


def quantiles(scores: list[float]) -> str:
    if len(scores) < 20:
        return "  ".join(f"{s:.1f}" for s in sorted(scores))
    q = statistics.quantiles(scores, n=10)
    return f"min {min(scores):.1f}  p10 {q[0]:.1f}  median {statistics.median(scores):.1f}  p90 {q[-1]:.1f}  max {max(scores):.1f}"


def fixture_section(work: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests.test_gaps import ANSWERED, UNANSWERED

    kb = KnowledgeBase(work / "fixture")
    kb.import_dir(REPO / "tests" / "fixtures" / "articles")
    answered = [best_answer(kb, q)[0] for q in ANSWERED]
    unanswered = [best_answer(kb, q)[0] for q in UNANSWERED]
    print("## fixture articles (3 published)")
    print(f"answered   ({len(answered)}): {quantiles(answered)}")
    print(f"unanswered ({len(unanswered)}): {quantiles(unanswered)}")
    print(
        f"threshold {ANSWER_THRESHOLD}: separates them: {min(answered) > ANSWER_THRESHOLD > max(unanswered)}"
    )
    kb.close()


def afqmc_section(data: Path, work: Path) -> None:
    docs = [json.loads(x) for x in (data / "faq_docs_dev.jsonl").open(encoding="utf-8")]
    queries = [json.loads(x) for x in (data / "faq_eval_dev.jsonl").open(encoding="utf-8")]

    def held_out(q: dict) -> bool:
        key = ",".join(sorted(q["gold_doc_ids"]))
        return hashlib.md5(key.encode()).digest()[0] % 2 == 1

    removed = {d for q in queries if held_out(q) for d in q["gold_doc_ids"]}
    kept = [q for q in queries if not held_out(q) and not set(q["gold_doc_ids"]) & removed]
    gone = [q for q in queries if held_out(q)]
    path = work / "afqmc.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            if d["doc_id"] not in removed:
                rec = {"id": d["doc_id"], "title": d["text"], "category": "product"}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    kb = KnowledgeBase(work / "afqmc")
    kb.import_jsonl(path)
    answerable = [best_answer(kb, q["question"])[0] for q in kept]
    unanswerable = [best_answer(kb, q["question"])[0] for q in gone]
    print(f"\n## AFQMC ({len(docs) - len(removed)} standard questions in the knowledge base)")
    print(f"answerable   ({len(answerable)}): {quantiles(answerable)}")
    print(f"unanswerable ({len(unanswerable)}): {quantiles(unanswerable)}")
    print("threshold | gaps found (unanswerable flagged) | false gaps (answerable flagged)")
    for t in THRESHOLDS:
        found = sum(s < t for s in unanswerable) / len(unanswerable)
        false = sum(s < t for s in answerable) / len(answerable)
        print(f"{t:>9} | {found:>33.1%} | {false:>30.1%}")
    kb.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fixture_section(work)
        if (args.data / "faq_docs_dev.jsonl").is_file():
            afqmc_section(args.data, work)
        else:
            print(f"\n(no AFQMC data in {args.data}: skipped)")


if __name__ == "__main__":
    main()
