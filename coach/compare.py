"""Re-audit and compare: check an earlier run's conversations again with the current
rule pack (a new run, marked as re-auditing the old one; the old items are marked
replaced, so statistics count each conversation once) and show both side by side:
each conversation's score before and after, and the findings added and removed (a
finding is its rule, turn and flagged wording), so a rule change is judged on real
chats before it is adopted.  Queries live in storage/compare.py."""

from __future__ import annotations

import json
from collections import Counter

from storage import compare as repo

from .audits import AuditError, AuditStore, _conversation

MAX_COMPARED = 20000  # conversations of a run compared (the first ones, in upload order)


def reaudit(store: AuditStore, run_id: int, *, by: str, rules_version: int) -> int:
    """A new queued run with the conversations of `run_id`, to be checked with the
    rules of `rules_version`; returns its id."""
    old = store.run(run_id)
    convs = [_conversation(json.loads(t)) for t in repo.conversations(store.database, run_id)]
    if not convs:
        raise AuditError("该批次没有可重新质检的会话", 409)
    with store.database.begin():
        new = store.create_run(
            f"重新质检：{old['name']}"[:200],
            convs,
            [],
            by=by,
            rules_version=rules_version,
            reaudit=True,
        )
        repo.link(store.database, new, run_id, rules_version)
    return new


def reaudit_of(store: AuditStore, run_id: int) -> int | None:
    return repo.reaudit_of(store.database, run_id)


def reaudits(store: AuditStore, run_id: int) -> list[int]:
    return repo.reaudits(store.database, run_id)


def _key(f: dict) -> tuple:
    return (f.get("rule", ""), f.get("turn"), f.get("match") or "")


def _counted(findings_text: str) -> Counter:
    return Counter(_key(f) for f in json.loads(findings_text or "[]") if not f.get("waived"))


def _label(key: tuple) -> dict:
    rule, turn, match = key
    return {"rule": rule, "turn": turn + 1 if isinstance(turn, int) else None, "match": match}


def compare(store: AuditStore, old_run: int, new_run: int) -> dict:
    """Both runs side by side: per conversation (in both) the scores, the change and
    the findings added and removed (waived ones do not count); totals; the
    conversations changed first, the largest drop first."""
    before, after = store.run(old_run), store.run(new_run)
    old = {r["conv_id"]: r for r in repo.results(store.database, old_run, MAX_COMPARED)}
    rows, added_total, removed_total = [], Counter(), Counter()
    for r in repo.results(store.database, new_run, MAX_COMPARED):
        o = old.get(r["conv_id"])
        if o is None:
            continue
        a, b = _counted(o["findings"]), _counted(r["findings"])
        added, removed = b - a, a - b
        for k, n in added.items():
            added_total[k[0]] += n
        for k, n in removed.items():
            removed_total[k[0]] += n
        delta = round((r["score"] or 0) - (o["score"] or 0), 1)
        rows.append(
            {
                "conv_id": r["conv_id"],
                "agent": r["agent"] or "",
                "old_item": o["id"],
                "new_item": r["id"],
                "old_score": o["score"],
                "new_score": r["score"],
                "delta": delta,
                "added": [_label(k) for k in sorted(added.elements(), key=str)],
                "removed": [_label(k) for k in sorted(removed.elements(), key=str)],
            }
        )
    rows.sort(key=lambda x: (not (x["delta"] or x["added"] or x["removed"]), x["delta"]))
    n = len(rows)
    return {
        "old": before,
        "new": after,
        "rows": rows,
        "compared": n,
        "changed": sum(1 for x in rows if x["delta"] or x["added"] or x["removed"]),
        "old_mean": round(sum(x["old_score"] or 0 for x in rows) / n, 1) if n else None,
        "new_mean": round(sum(x["new_score"] or 0 for x in rows) / n, 1) if n else None,
        "by_rule": [
            {"rule": rule, "added": added_total.get(rule, 0), "removed": removed_total.get(rule, 0)}
            for rule in sorted(set(added_total) | set(removed_total))
        ],
        "limit": MAX_COMPARED,
    }
