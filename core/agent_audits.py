"""One agent's coaching at a glance (我的质检; a supervisor's look at one agent):
the mean score, a weekly trend, the habits (rules tripped most, with the agent's own
flagged sentences and the standard script to use instead) and one row per
conversation (its latest audit), filtered by period, score range or findings.

The figures are SQL aggregates (storage/agent_audits.py); this module checks the
filters (Chinese messages by field, for the page and the API alike), folds days into
weeks and builds the chart (core/charts.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from storage import agent_audits as repo
from storage.agent_audits import Period

from .charts import ChartPoint, line_chart_svg

TOP_HABITS = 5
EXAMPLES_PER_HABIT = 2
EXAMPLE_CHARS = 300  # of a flagged sentence
MAX_WEEKS = 104  # points of the trend (the newest weeks when the period is longer)
PRESET_WEEKS = (4, 12, 26)


@dataclass
class AgentFilters:
    """What the agent's page shows: a period of audit dates (inclusive, UTC) for every
    figure; a score range and "only with findings" for the conversation list."""

    since: dt.date | None = None
    until: dt.date | None = None
    min_score: float | None = None
    max_score: float | None = None
    with_findings: bool = False
    raw: dict[str, str] = field(default_factory=dict)  # the input as typed, to show again

    def period(self) -> Period:
        return Period(
            since=self.since.isoformat() if self.since else None,
            before=(self.until + dt.timedelta(days=1)).isoformat() if self.until else None,
        )

    def list_args(self) -> dict:
        return {
            "min_score": self.min_score,
            "max_score": self.max_score,
            "with_findings": self.with_findings,
        }

    def active(self) -> bool:
        return any(
            (self.since, self.until, self.min_score is not None, self.max_score is not None)
        ) or bool(self.with_findings)


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _score(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise ValueError(text)
    return value


def parse_filters(args: Mapping[str, str]) -> tuple[AgentFilters, dict[str, str]]:
    """Filters from query arguments `from`, `to` (YYYY-MM-DD), `min`, `max` (0-100)
    and `findings` (1: only conversations with findings), and the errors by argument
    (Chinese); a field in error is left out of the filters."""
    errors: dict[str, str] = {}
    f = AgentFilters()
    f.raw = {k: str(args.get(k, "") or "").strip()[:40] for k in ("from", "to", "min", "max")}
    for key, attr, parse, message in (
        ("from", "since", _date, "开始日期应为「年-月-日」，例如 2026-11-02"),
        ("to", "until", _date, "结束日期应为「年-月-日」，例如 2026-11-30"),
        ("min", "min_score", _score, "最低分应为 0 到 100 之间的数字"),
        ("max", "max_score", _score, "最高分应为 0 到 100 之间的数字"),
    ):
        text = f.raw[key]
        if not text:
            continue
        try:
            setattr(f, attr, parse(text))
        except ValueError:
            errors[key] = message
    if f.since and f.until and f.until < f.since:
        errors["to"] = "结束日期不能早于开始日期"
        f.until = None
    if f.min_score is not None and f.max_score is not None and f.max_score < f.min_score:
        errors["max"] = "最高分不能低于最低分"
        f.max_score = None
    f.with_findings = str(args.get("findings", "") or "") in ("1", "on", "true")
    return f, errors


def presets(today: dt.date | None = None) -> list[tuple[str, str]]:
    """(label, `from` date) of the quick periods: the last N weeks up to today (UTC,
    as the audit dates are)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return [
        (f"最近 {n} 周", (today - dt.timedelta(days=7 * n - 1)).isoformat()) for n in PRESET_WEEKS
    ]


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def weekly(days: list[tuple[str, int, float]]) -> list[dict]:
    """Per week (Monday first) from the first to the last audited week: week (the
    Monday), conversations, mean score (None in a week without audits)."""
    weeks: dict[dt.date, list] = {}
    for day, n, total in days:
        monday = _monday(_date(day))
        acc = weeks.setdefault(monday, [0, 0.0])
        acc[0] += n
        acc[1] += total
    if not weeks:
        return []
    first, last = min(weeks), max(weeks)
    first = max(first, last - dt.timedelta(weeks=MAX_WEEKS - 1))
    out = []
    week = first
    while week <= last:
        n, total = weeks.get(week, (0, 0.0))
        out.append(
            {
                "week": week.isoformat(),
                "conversations": n,
                "mean_score": round(total / n, 1) if n else None,
            }
        )
        week += dt.timedelta(weeks=1)
    return out


def trend_chart(weeks: list[dict], title: str) -> str:
    """The weekly mean scores as an inline SVG (core/charts.py); "" without data."""
    points = [
        ChartPoint(
            label=w["week"][5:],  # MM-DD of the Monday
            value=w["mean_score"],
            note=f"{w['week']} 起的一周，{w['conversations']} 个会话",
        )
        for w in weeks
    ]
    return line_chart_svg(points, title=title, y_label="平均分", x_label="周（周一日期）")


class AgentAudits:
    """One agent's audits, read from the instance database."""

    def __init__(self, database):
        self.database = database

    def habits(self, agent: str, period: Period, limit: int = TOP_HABITS) -> list[dict]:
        """The rules tripped most, each with up to EXAMPLES_PER_HABIT of the agent's
        own flagged sentences (newest conversations first) and the script to use."""
        rows = repo.habits(self.database, agent, period, limit)
        picks = repo.habit_examples(
            self.database, agent, period, [r["rule"] for r in rows], EXAMPLES_PER_HABIT
        )
        examples: dict[str, list[dict]] = {}
        for rule, item_id, idx in picks:
            found = repo.finding_with_turn(self.database, item_id, idx, EXAMPLE_CHARS)
            if found is None:
                continue
            text = found["turn_text"]
            span = found.get("span") or [0, 0]
            start, end = (span + [0, 0])[:2] if isinstance(span, list) else (0, 0)
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end):
                start = end = 0
            end = min(end, len(text))
            start = min(start, end)
            examples.setdefault(rule, []).append(
                {
                    "item_id": item_id,
                    "finding": idx,
                    "text": text,
                    # the sentence cut at the flagged words (spans are code points)
                    "before": text[:start],
                    "flagged": text[start:end],
                    "after": text[end:],
                    "match": found.get("match") or "",
                    "message": found.get("message") or "",
                    "suggestion": found.get("suggestion") or "",
                    "script": (found.get("script") or {}).get("text") or "",
                }
            )
        out = []
        for r in rows:
            ex = examples.get(r["rule"], [])
            first = ex[0] if ex else {}
            out.append(
                {
                    **r,
                    "message": first.get("message", ""),
                    "suggestion": next((e["suggestion"] for e in ex if e["suggestion"]), ""),
                    "script": next((e["script"] for e in ex if e["script"]), ""),
                    "examples": ex,
                }
            )
        return out

    def overview(
        self, agent: str, filters: AgentFilters, *, limit: int = 50, offset: int = 0
    ) -> dict:
        """Everything the agent's page shows: summary, weeks, chart, habits and a page
        of conversations (their latest audit) with their count."""
        period = filters.period()
        weeks = weekly(repo.per_day(self.database, agent, period))
        return {
            "agent": agent,
            "summary": repo.summary(self.database, agent, period),
            "weeks": weeks,
            "chart": trend_chart(weeks, f"{agent} 每周平均分"),
            "habits": self.habits(agent, period),
            "conversations": repo.conversations(
                self.database, agent, period, limit=limit, offset=offset, **filters.list_args()
            ),
            "conversation_count": repo.conversation_count(
                self.database, agent, period, **filters.list_args()
            ),
        }
