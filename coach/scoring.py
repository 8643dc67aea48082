"""Standardisation score: 100 minus capped per-rule deductions; agent aggregates.

Each finding deducts its rule's `weight` until the rule's `cap` for the
conversation is used up; a fatal finding caps the whole score at the pack's
`fatal_cap` (default 40). The breakdown lists, per rule, the findings and the
points actually deducted, so a supervisor can see why a score is what it is.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

UNKNOWN_AGENT = "（未标注客服）"
KPI_WEIGHT = 5  # points of 咨询工作标准度 in the handbook's monthly KPI (岗位绩效考核)
KPI_RULE = "咨询工作标准度（满分 5 分）= 5 × 当月平均分 ÷ 100，四舍五入保留一位小数"


def kpi_points(mean_score: float | None) -> float | None:
    """The KPI figure 咨询工作标准度 from a mean standardisation score (0-100): 5 × the
    mean (rounded to 0.1, as shown) ÷ 100, rounded half up to 0.1 point; None
    without a mean."""
    if mean_score is None:
        return None
    mean = Decimal(str(round(float(mean_score), 1)))
    points = mean * KPI_WEIGHT / 100
    return float(points.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def score_conversation(findings: list[dict], pack) -> tuple[float, dict]:
    """Set each finding's `deduction`; return (score, breakdown by rule id)."""
    used: dict[str, float] = defaultdict(float)
    breakdown: dict[str, dict] = {}
    fatal = False
    for f in findings:
        rule = pack.get(f["rule"])
        weight = rule.weight if rule else 0
        cap = rule.max_deduction if rule else 0
        take = max(0.0, min(weight, cap - used[f["rule"]]))
        used[f["rule"]] += take
        f["deduction"] = _num(take)
        row = breakdown.setdefault(
            f["rule"],
            {
                "category": f["category"],
                "level": f["level"],
                "count": 0,
                "deduction": 0,
                "cap": _num(cap),
            },
        )
        row["count"] += 1
        row["deduction"] = _num(used[f["rule"]])
        fatal = fatal or f["level"] == "fatal"
    score = max(0.0, 100.0 - sum(used.values()))
    if fatal:
        score = min(score, float(pack.settings.get("fatal_cap", 40)))
    return _num(round(score, 1)), breakdown


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 2)


def aggregate_agents(reports: list, top: int = 5) -> list[dict]:
    """Per agent: mean score, findings per 100 agent turns, most frequent habits."""
    groups: dict[str, list] = defaultdict(list)
    for r in reports:
        groups[r.agent or UNKNOWN_AGENT].append(r)
    out = []
    for agent, reps in groups.items():
        turns = sum(r.agent_turns for r in reps)
        nfind = sum(len(r.findings) for r in reps)
        by_rule: Counter = Counter()
        matches: dict[str, Counter] = defaultdict(Counter)
        cats: dict[str, str] = {}
        for r in reps:
            for f in r.findings:
                by_rule[f["rule"]] += 1
                cats[f["rule"]] = f["category"]
                if f["match"]:
                    matches[f["rule"]][f["match"]] += 1
        habits = [
            {
                "rule": rid,
                "category": cats[rid],
                "count": n,
                "matches": [m for m, _ in matches[rid].most_common(3)],
            }
            for rid, n in by_rule.most_common(top)
        ]
        out.append(
            {
                "agent": agent,
                "conversations": len(reps),
                "agent_turns": turns,
                "mean_score": round(sum(r.score for r in reps) / len(reps), 1),
                "findings": nfind,
                "findings_per_100_turns": round(100.0 * nfind / turns, 1) if turns else 0.0,
                "top_habits": habits,
            }
        )
    out.sort(key=lambda a: (a["mean_score"], a["agent"]))
    return out


def rank(values: list[float]) -> list[float]:
    """Ranks 1..n with ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman rank correlation (Pearson on tie-averaged ranks); 0.0 if undefined."""
    if len(xs) != len(ys) or len(xs) < 2:
        return 0.0
    rx, ry = rank(xs), rank(ys)
    n = len(xs)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5 if vx and vy else 0.0
