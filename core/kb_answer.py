"""知识库中有答案 (issue 13): the agent said they did not know (不清楚 / 不知道 /
不了解 …), hedged (大概 / 可能: any vague finding) or sent the customer elsewhere
(不归我管 / 你去找售后), yet a published article answers the customer's question; the
finding then links that article.

The coach knows nothing of the knowledge base: an AuditStore checking a run calls
`KbAnswers.annotate` (its `annotate` hook) on every conversation it checked, before
the findings are saved, and this module asks the search for the customer turns that
came just before the finding's turn.  The article's id, title and score are stored in
the finding (`kb_answer`), so pages, exports and the API show it as it was when the
conversation was checked.  THRESHOLD is measured by bench/kb_answer.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from .gaps import is_question

log = logging.getLogger(__name__)

# The lowest BM25F score (kb/search.py) of an article taken to answer the question,
# measured with bench/kb_answer.py on ../shared/data/transcripts_sample.jsonl and the
# starter articles: 55 candidate findings in 492 conversations, 34 with a question and
# an article; 23 score 15 or more (22 conversations), 8 of them judged right by hand
# (8 of the top 30 too).  Precision hardly rises with the score (4 of 14 at 25, 2 of 4
# at 40): the misses are questions about one order's state (今天能到吗) that a policy
# article on the same topic cannot answer, so the link is a lead for the supervisor.
THRESHOLD = 15.0
# Articles that answer a customer: product and industry knowledge (norm and phrasing
# articles are for the agents themselves).
ANSWER_CATEGORIES = ("product", "industry")
CANDIDATES = 5  # top hits looked at for one in ANSWER_CATEGORIES
QUESTION_CHARS = 200  # of the customer's turns, the end (the question comes last)
_PLACEHOLDER = re.compile(r"\[[^\[\]]{1,10}\]")  # anonymised [订单x], [数字x] of exported chats
# An improper finding sends the customer elsewhere when its words do (不归我管, 找别人,
# 你去问, 你自己去查, 跟我说没用, 与我无关 …); rude words and promises do not.
SENT_AWAY = ("不归", "找", "管不了", "负责", "没用", "自己", "去问", "去查", "去联系", "无关", "没关系", "不关")  # fmt: skip


def triggers(finding: dict) -> bool:
    """Whether a finding says the agent did not know or would not say for sure (every
    vague finding: 不清楚 / 不知道 / 不确定, and the hedged 大概 / 可能 / 应该是 the norm
    puts beside them), or sent the customer away (an improper one with SENT_AWAY)."""
    category = finding.get("category")
    if category == "vague":
        return True
    return category == "improper" and any(w in (finding.get("match") or "") for w in SENT_AWAY)


def question_before(turns: Sequence, turn: int) -> str:
    """The customer's turns right before agent turn `turn` (the nearest run of them,
    skipping the agent's own turns in between), joined, their last QUESTION_CHARS."""
    j = turn - 1
    while j >= 0 and _role(turns[j]) != "customer":
        j -= 1
    texts = []
    while j >= 0 and _role(turns[j]) == "customer":
        texts.append(_text(turns[j]).strip())
        j -= 1
    question = " ".join(t for t in reversed(texts) if t)
    return " ".join(_PLACEHOLDER.sub(" ", question).split())[-QUESTION_CHARS:]


def _role(turn) -> str:
    return turn["role"] if isinstance(turn, dict) else turn.role


def _text(turn) -> str:
    return (turn.get("text") if isinstance(turn, dict) else turn.text) or ""


class KbAnswers:
    """Finds the published article that answers a question, for audit findings."""

    def __init__(self, kb, threshold: float = THRESHOLD):
        self.kb = kb  # a kb.service.KnowledgeBase
        self.threshold = threshold

    def answer(self, question: str) -> dict | None:
        """`{"id", "title", "score"}` of the best answering article scoring at least
        the threshold, or None (also when the text asks nothing: core/gaps.py
        is_question).  Not written to the search log: no agent searched."""
        if not is_question(question):
            return None  # 好的 / 没有了谢谢: nothing was asked
        result = self.kb.search(
            question, log=False, doctype="article", limit=CANDIDATES, snippets=False
        )
        # the best scoring one: a pinned hit comes first whatever its score
        answers = [h for h in result.hits if h.category in ANSWER_CATEGORIES]
        best = max(answers, key=lambda h: h.score, default=None)
        if best is None or best.score < self.threshold:
            return None
        return {"id": best.id, "title": best.title, "score": round(best.score, 2)}

    def annotate(self, conversation, findings: list[dict]) -> int:
        """Add `kb_answer` to the findings of a checked conversation whose question
        the knowledge base answers; returns how many were linked."""
        linked = 0
        asked: dict[str, dict | None] = {}
        for f in findings:
            turn = f.get("turn")
            if not triggers(f) or not isinstance(turn, int):
                continue
            question = question_before(conversation.turns, turn)
            if question not in asked:
                try:
                    asked[question] = self.answer(question)
                except Exception:  # a hint only: a failed search never fails the audit
                    log.exception("知识库中有答案: search failed")
                    asked[question] = None
            if asked[question] is not None:
                f["kb_answer"] = dict(asked[question], question=question)
                linked += 1
        return linked


def label(answer: dict | None) -> str:
    """The finding's line: 知识库中可能有答案：《标题》 ("" without an answer)."""
    return f"知识库中可能有答案：《{answer['title']}》" if answer else ""


__all__ = ["THRESHOLD", "KbAnswers", "label", "question_before", "triggers"]
