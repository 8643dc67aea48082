"""The team and one agent over time (/agents, /agents/<name>): a ranking of the
agents for a month with each one's KPI figure, and one agent's figures per day,
week or month (mean score, conversations, findings per 100 agent turns by
category), a trend chart and their habits.

Every figure counts a conversation once: its latest checked audit in the period
(storage/agent_audits.py, as 我的质检 does), and findings waived by an accepted
appeal (or automatically, by a remembered one) do not count.

The KPI figure 咨询工作标准度 (the handbook's 岗位绩效考核: 工作质量度 30 %, of which
咨询工作标准度 5 %) is worth 5 points a month: KPI = 5 × the month's mean score
(shown rounded to 0.1) ÷ 100, rounded half up to 0.1 point.  A month with no
audited conversation has no figure."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from coach.scoring import kpi_points
from storage import agent_audits as repo
from storage.agent_audits import Period

from .agent_audits import AgentAudits, parse_filters
from .charts import ChartPoint, line_chart_svg

GRAINS = {"day": "日", "week": "周", "month": "月"}
SORTS = ("score", "conversations", "findings", "kpi", "agent")
TREND_STEP = 1.0  # a change of the mean below this is shown as steady
MAX_BUCKETS = 120
_MONTH = re.compile(r"\A(\d{4})-(\d{2})\Z")


def _mean(total: float, n: int) -> float | None:
    return round(total / n, 1) if n else None


def _per_100(findings: int, turns: int) -> float:
    return round(100.0 * findings / turns, 1) if turns else 0.0


def month_period(month: str) -> Period:
    """Audit dates of a month YYYY-MM (ValueError if it is none)."""
    m = _MONTH.match(month or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(month)
    year, mon = int(m.group(1)), int(m.group(2))
    start = dt.date(year, mon, 1)
    end = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    return Period(since=start.isoformat(), before=end.isoformat())


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - (mon == 1):04d}-{(mon - 2) % 12 + 1:02d}"


def trend_arrow(now: float | None, before: float | None) -> tuple[str, str]:
    """(arrow, words) comparing a mean score with the previous month's."""
    if now is None or before is None:
        return "", "上月无数据"
    diff = round(now - before, 1)
    if diff >= TREND_STEP:
        return "↑", f"比上月高 {diff}"
    if diff <= -TREND_STEP:
        return "↓", f"比上月低 {-diff}"
    return "→", f"与上月持平（{diff:+}）"


def parse_team_args(args: Mapping[str, str], months: list[str]) -> tuple[dict, dict[str, str]]:
    """month (default: the newest with audits, else this month), sort and order;
    errors by argument (Chinese)."""
    errors: dict[str, str] = {}
    default = months[0] if months else dt.datetime.now(dt.UTC).strftime("%Y-%m")
    month = str(args.get("month", "") or "").strip()[:20]
    if month:
        try:
            month_period(month)
        except ValueError:
            errors["month"] = "月份应为「年-月」，例如 2026-11"
            month = default
    else:
        month = default
    sort = str(args.get("sort", "") or "score")
    if sort not in SORTS:
        sort = "score"
    order = "asc" if str(args.get("order", "") or "") == "asc" else "desc"
    return {"month": month, "sort": sort, "order": order}, errors


class AgentTrends:
    """The team ranking and one agent's figures over time."""

    def __init__(self, database):
        self.database = database

    def months(self) -> list[str]:
        return repo.audit_months(self.database)

    def team(self, month: str, *, sort: str = "score", order: str = "desc") -> list[dict]:
        """Per agent for the month: conversations, mean score, findings per 100 agent
        turns, the trend against the previous month and the KPI figure."""
        before = {
            r["agent"]: r for r in repo.team(self.database, month_period(previous_month(month)))
        }
        out = []
        for r in repo.team(self.database, month_period(month)):
            mean = _mean(r["score_sum"], r["conversations"])
            prev = before.get(r["agent"])
            prev_mean = _mean(prev["score_sum"], prev["conversations"]) if prev else None
            arrow, words = trend_arrow(mean, prev_mean)
            out.append(
                {
                    "agent": r["agent"],
                    "conversations": r["conversations"],
                    "mean_score": mean,
                    "previous_mean": prev_mean,
                    "findings": r["findings"],
                    "agent_turns": r["agent_turns"],
                    "findings_per_100_turns": _per_100(r["findings"], r["agent_turns"]),
                    "trend": arrow,
                    "trend_words": words,
                    "kpi": kpi_points(mean),
                }
            )
        key = {
            "score": lambda a: (a["mean_score"] or 0, a["agent"]),
            "conversations": lambda a: (a["conversations"], a["agent"]),
            "findings": lambda a: (a["findings_per_100_turns"], a["agent"]),
            "kpi": lambda a: (a["kpi"] or 0, a["agent"]),
            "agent": lambda a: a["agent"],
        }[sort if sort in SORTS else "score"]
        out.sort(key=key, reverse=order == "desc")
        for n, a in enumerate(out, 1):
            a["rank"] = n
        return out

    def buckets(self, agent: str, period: Period, grain: str) -> tuple[list[dict], list[str]]:
        """The agent's figures per day, week (Monday) or month, oldest first, and the
        categories found: bucket, conversations, mean_score, findings,
        findings_per_100_turns, by_category {category: per 100 agent turns}, kpi
        (months only)."""
        days = repo.per_day_detail(self.database, agent, period)
        cats = repo.per_day_categories(self.database, agent, period)

        def bucket(day: str) -> str:
            if grain == "month":
                return day[:7]
            if grain == "week":
                d = dt.date.fromisoformat(day)
                return (d - dt.timedelta(days=d.weekday())).isoformat()
            return day

        acc: dict[str, dict] = {}
        for d in days:
            b = acc.setdefault(
                bucket(d["day"]),
                {"conversations": 0, "score_sum": 0.0, "agent_turns": 0, "findings": 0, "cat": {}},
            )
            for k in ("conversations", "score_sum", "agent_turns", "findings"):
                b[k] += d[k]
        categories: list[str] = []
        for day, category, n in cats:
            b = acc.get(bucket(day))
            if b is None:
                continue
            b["cat"][category] = b["cat"].get(category, 0) + n
            if category not in categories:
                categories.append(category)
        out = []
        for key in sorted(acc)[-MAX_BUCKETS:]:
            b = acc[key]
            mean = _mean(b["score_sum"], b["conversations"])
            out.append(
                {
                    "bucket": key,
                    "conversations": b["conversations"],
                    "mean_score": mean,
                    "findings": b["findings"],
                    "agent_turns": b["agent_turns"],
                    "findings_per_100_turns": _per_100(b["findings"], b["agent_turns"]),
                    "by_category": {
                        c: _per_100(n, b["agent_turns"]) for c, n in sorted(b["cat"].items())
                    },
                    "kpi": kpi_points(mean) if grain == "month" else None,
                }
            )
        return out, sorted(categories)

    def agent(self, agent: str, args: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
        """One agent's page: the figures per `by` (day, week, month) in the period
        `from`-`to`, the chart, the monthly KPI figures and the habits; and the
        argument errors (Chinese)."""
        filters, errors = parse_filters(args)
        grain = str(args.get("by", "") or "week")
        if grain not in GRAINS:
            grain = "week"
        period = filters.period()
        rows, categories = self.buckets(agent, period, grain)
        months, _ = self.buckets(agent, period, "month")
        points = [
            ChartPoint(
                label=r["bucket"][5:] if grain != "month" else r["bucket"],
                value=r["mean_score"],
                note=f"{r['bucket']}，{r['conversations']} 个会话",
            )
            for r in rows
        ]
        chart = line_chart_svg(
            points,
            title=f"{agent} 每{GRAINS[grain]}平均分",
            y_label="平均分",
            x_label={"day": "日期", "week": "周（周一日期）", "month": "月份"}[grain],
        )
        view = {
            "agent": agent,
            "grain": grain,
            "rows": rows,
            "categories": categories,
            "months": months,
            "chart": chart,
            "summary": repo.summary(self.database, agent, period),
            "habits": AgentAudits(self.database).habits(agent, period),
            "filters": filters,
        }
        return view, errors
