"""Customer questions of audited transcripts that the knowledge base could not answer:
each checked conversation is looked at once; every customer turn that reads as a
question is searched (articles only, not logged), and one whose best article scores
below ANSWER_THRESHOLD is kept as a content gap (kb/gaps.py groups them).

The threshold was measured on the fixture knowledge base (tests/fixtures/articles,
bench/gap_threshold.py): the questions its articles answer (发票怎么开, 退款要多久才能到账,
能开专票吗, 钱什么时候退回来, 客户来了多久要回复) score 20.9 to 28.6; questions they do
not answer (这个手机防水吗, 会员积分怎么兑换, 你们周六上班吗, 优惠券怎么用, 能便宜点吗)
0 to 2.3, and a stray shared word (多久发货 against 退款多久到账) 4.4: 6 lies between.
On AFQMC (花呗 questions whose standard question was removed, against ones still there)
the two score alike (medians 65 and 69): a threshold finds what the articles do not
cover at all, not near misses inside a topic they cover.  Scores grow with the corpus'
term statistics: an instance sets its own (GAP_SCORE_THRESHOLD in its config.py).
"""

from __future__ import annotations

import json
import re

from kb import gaps as kb_gaps
from kb import textproc
from storage import gaps as repo

ANSWER_THRESHOLD = 6.0
SCAN_BATCH = 200  # conversations per call
QUESTION_MIN_TERMS = 1
QUESTION_MIN_CHARS = 4
QUESTION_MAX_CHARS = 200
# a customer turn that asks something: a question mark or a question word
_ASKS = re.compile(
    r"[?？吗呢么嘛]|怎么|怎样|如何|为什么|为啥|什么|多少|多久|几天|哪|能不能|可不可以|是否|有没有"
)
_PLACEHOLDER = re.compile(r"\[[^\[\]]{1,10}\]")  # JD's anonymised [订单x], [数字x]


def is_question(text: str) -> bool:
    """A customer turn worth answering from the knowledge base: asks something, in at
    least two retrieval words, and is not a pasted wall of text."""
    text = _PLACEHOLDER.sub(" ", text or "").strip()
    if not QUESTION_MIN_CHARS <= len(text) <= QUESTION_MAX_CHARS or not _ASKS.search(text):
        return False
    return len(set(textproc.terms(text, hmm=False))) >= QUESTION_MIN_TERMS


def best_answer(kb, text: str) -> tuple[float, str]:
    """The best published article's score for a question, and its id ("" for none)."""
    result = kb.search(text, log=False, doctype="article", limit=1, snippets=False)
    if not result.hits:
        return 0.0, ""
    return float(result.hits[0].score), result.hits[0].id


def unanswered(kb, turns: list[dict], threshold: float = ANSWER_THRESHOLD) -> list[dict]:
    """{turn, text, score, article_id} of the customer questions with no good answer."""
    out = []
    seen = set()
    for n, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("role") != "customer":
            continue
        text = " ".join(str(turn.get("text") or "").split())
        if not is_question(text):
            continue
        key = kb_gaps.query_key(text)
        if key in seen:
            continue
        seen.add(key)
        score, article_id = best_answer(kb, text)
        if score < threshold:
            out.append(
                {
                    "turn": n,
                    "text": text[:QUESTION_MAX_CHARS],
                    "qkey": key,
                    "score": round(score, 3),
                    "article_id": article_id,
                }  # fmt: skip
            )
    return out


def scan_transcripts(
    services, *, limit: int = SCAN_BATCH, threshold: float = ANSWER_THRESHOLD
) -> dict:
    """Look at up to `limit` checked conversations not looked at yet (of runs in the
    gap window); returns {"scanned", "questions", "left"}."""
    from kb.store import now_iso

    kb = services.kb
    db = kb.database
    since = kb_gaps.window_start()
    items = repo.unscanned_items(db, since, limit)
    scans, questions = [], []
    at = now_iso()
    for item in items:
        try:
            turns = json.loads(item["conversation"] or "{}").get("turns") or []
        except (ValueError, AttributeError):
            turns = []
        found = unanswered(kb, turns, threshold)
        scans.append({"item_id": item["id"], "at": at, "questions": len(found)})
        questions.extend(
            {**q, "item_id": item["id"], "run_id": item["run_id"], "at": item["created_at"]}
            for q in found
        )
    repo.record_scans(db, scans, questions)
    return {
        "scanned": len(scans),
        "questions": len(questions),
        "left": repo.unscanned_count(db, since),
    }


def pending(services) -> int:
    """Checked conversations in the window not looked at yet."""
    return repo.unscanned_count(services.kb.database, kb_gaps.window_start())
