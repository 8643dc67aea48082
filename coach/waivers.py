"""Waivers remembered: when a supervisor accepts an appeal, the finding's rule and
its flagged wording (normalised: full/half width, traditional/simplified, case and
spaces) are kept; a later check that flags the same wording under the same rule
waives that finding at once: it is marked 已自动豁免（依据申诉 #N）and deducts
nothing.  A finding without flagged wording (a missing greeting, a slow reply) is
never remembered: there is no wording to recognise, and the rule would be waived
for every conversation.  Queries live in storage/waivers.py."""

from __future__ import annotations

from kb.textproc import normalize
from storage import waivers as repo

MAX_WORDING = 100  # characters kept of a flagged wording (as qa_findings.match)


def wording_key(match: str | None) -> str:
    """The flagged wording as it is remembered and compared ("" if there is none)."""
    text = normalize(str(match or "")).casefold()
    return "".join(text.split())[:MAX_WORDING]


def auto_note(appeal_id: int) -> str:
    return f"已自动豁免（依据申诉 #{appeal_id}）"


def remember(database, finding: dict, *, appeal_id: int, item_id: int, by: str, at: str) -> bool:
    """Keep an accepted appeal's rule and wording (False: no wording, or known)."""
    key = wording_key(finding.get("match"))
    if not key:
        return False
    return repo.remember(
        database,
        {
            "rule": finding["rule"],
            "wording": key,
            "appeal_id": appeal_id,
            "item_id": item_id,
            "created_by": by,
            "created_at": at,
        },
    )


def known(database, findings_lists: list[list[dict]]) -> dict[tuple[str, str], int]:
    """The remembered (rule, wording) -> appeal among these conversations' findings."""
    rules, words = set(), set()
    for findings in findings_lists:
        for f in findings:
            key = wording_key(f.get("match"))
            if key:
                rules.add(f["rule"])
                words.add(key)
    return repo.lookup(database, sorted(rules), sorted(words))


def apply(findings: list[dict], remembered: dict[tuple[str, str], int]) -> bool:
    """Mark the findings whose rule and wording are remembered as waived (no
    deduction, `auto_waiver` = the appeal, `waiver_note`); True if any was."""
    hit = False
    for f in findings:
        appeal = remembered.get((f["rule"], wording_key(f.get("match"))))
        if appeal is not None and wording_key(f.get("match")):
            f["waived"] = True
            f["deduction"] = 0
            f["auto_waiver"] = appeal
            f["waiver_note"] = auto_note(appeal)
            hit = True
    return hit


def rule_rates(database) -> dict[str, dict]:
    """Per rule: findings, waived, appeals, accepted, remembered, and the appeal rate
    (appeals per 100 findings) and waiver rate (waived per 100 findings)."""
    out = repo.rule_figures(database)
    for r in out.values():
        n = r["findings"]
        r["appeal_rate"] = round(100.0 * r["appeals"] / n, 1) if n else None
        r["waiver_rate"] = round(100.0 * r["waived"] / n, 1) if n else None
    return out
