"""Sampling and calibration: draw a random sample of audited conversations per agent
and period for manual review, and measure how far supervisors agree with each other
and with the checker.

The pure parts (the draw, the agreement figures, the checker's precision per rule)
are plain functions over plain data, unit-tested by hand-computed examples; the
`Calibration` class (core/calibration_reviews.py) keeps samples and reviews through
storage/calibration.py.

How the figures are computed (the report page says the same):

- A sample is drawn per agent: the agent's candidate conversations (the latest audit
  of each conversation in the period, or the conversations of one run) in id order,
  and `random.Random(f"{seed}:{agent}").sample(ids, min(N, len(ids)))`.  The same
  seed, period, run and agents on the same data draw the same sample, and adding an
  agent leaves the others' draws unchanged.
- Findings, two supervisors A and B, over the checker findings both judged:
  percent agreement p_o = findings judged alike / findings; Cohen's kappa
  κ = (p_o − p_e) / (1 − p_e) with p_e = Σ over {confirm, reject} of
  (A's share of that verdict × B's share); undefined (shown as —) when p_e = 1, i.e.
  both gave one and the same verdict to every finding.  With more than two
  supervisors, every pair is shown, and the mean of the pairs' kappas (Light's kappa).
- Ratings (1–5 per conversation), over the conversations both rated: exact-agreement
  rate = conversations rated the same / conversations; mean absolute difference
  = Σ |rating A − rating B| / conversations.
- The checker: precision of a rule = confirmations / (confirmations + rejections),
  pooling every submitted review's verdict on each finding of the rule (a finding
  judged by two supervisors counts twice).  Misses are the findings supervisors added
  (rule and turn), counted per rule.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterable, Mapping
from itertools import combinations

from kb.errors import KbError

VERDICTS = {"confirm": "成立", "reject": "不成立"}
RATINGS = (1, 2, 3, 4, 5)
MAX_PER_AGENT = 50
MAX_SAMPLE = 500  # conversations in one sample
MAX_CANDIDATES = 200_000  # conversations a draw reads ids of
MAX_NAME = 200
MAX_NOTE = 200
MAX_SEED = 10**12
_DIGITS = re.compile(r"\A[0-9]{1,13}\Z")


class CalibrationError(KbError):
    """A calibration request refused (Chinese message; `field` the form field)."""

    def __init__(self, message: str, status: int = 400, *, field: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


# -- the sample's parameters --------------------------------------------------------------


def new_seed() -> int:
    """A seed for a new draw (shown on the form, so the draw can be repeated)."""
    import secrets

    return secrets.randbelow(10**6)


def _date(text: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(text)
    return dt.date.fromisoformat(text)


def _whole(text: str, low: int, high: int) -> int:
    if not _DIGITS.match(text):
        raise ValueError(text)
    value = int(text)
    if not low <= value <= high:
        raise ValueError(text)
    return value


def split_agents(text: str) -> list[str]:
    """Agent names from a form field (comma, 、, space or newline separated)."""
    out: list[str] = []
    for part in re.split(r"[,，、;；\s]+", text or ""):
        if part and part not in out:
            out.append(part)
    return out


def parse_sample_form(form: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """The draw's parameters from the new-sample form (name, from, to, agents,
    per_agent, seed, run) and the errors by field (Chinese)."""
    errors: dict[str, str] = {}
    raw = {k: str(form.get(k, "") or "").strip() for k in (
        "name", "from", "to", "agents", "per_agent", "seed", "run")}  # fmt: skip
    params: dict = {"name": raw["name"], "since": None, "until": None, "run_id": None}
    if len(raw["name"]) > MAX_NAME:
        errors["name"] = f"名称最多 {MAX_NAME} 个字"
    for key, attr in (("from", "since"), ("to", "until")):
        if raw[key]:
            try:
                params[attr] = _date(raw[key])
            except ValueError:
                errors[key] = "日期应为「年-月-日」，例如 2026-11-02"
    if params["since"] and params["until"] and params["since"] > params["until"]:
        errors["to"] = "结束日期不能早于开始日期"
    if len(raw["agents"]) > 4000:
        errors["agents"] = "客服名单过长"
    params["agents"] = split_agents(raw["agents"][:4000])
    if len(params["agents"]) > 200:
        errors["agents"] = "一次最多指定 200 位客服（留空为全部客服）"
    elif any(len(a) > 200 for a in params["agents"]):
        errors["agents"] = "客服名称过长（每个最多 200 个字符）"
    try:
        params["per_agent"] = _whole(raw["per_agent"], 1, MAX_PER_AGENT)
    except ValueError:
        errors["per_agent"] = f"每位客服抽取的会话数应为 1 到 {MAX_PER_AGENT} 之间的整数"
    try:
        params["seed"] = _whole(raw["seed"], 0, MAX_SEED)
    except ValueError:
        errors["seed"] = "随机种子应为 0 到 1000000000000 之间的整数"
    if raw["run"]:
        try:
            params["run_id"] = _whole(raw["run"], 1, 2**63 - 1)
        except ValueError:
            errors["run"] = "批次应从列表中选择"
    return params, errors


# -- the draw ------------------------------------------------------------------------------


def draw(candidates: Iterable[Mapping], per_agent: int, seed: int | str) -> list[dict]:
    """`per_agent` conversations at random per agent (all of an agent with fewer), by
    agent then id; each agent's draw depends only on the seed and their own
    candidates, so the same inputs always draw the same sample."""
    by_agent: dict[str, list[int]] = {}
    for c in candidates:
        by_agent.setdefault(c["agent"] or "", []).append(int(c["id"]))
    out: list[dict] = []
    for agent in sorted(by_agent):
        ids = sorted(by_agent[agent])
        rng = random.Random(f"{seed}:{agent}")
        picked = rng.sample(ids, min(per_agent, len(ids)))
        out.extend({"id": i, "agent": agent} for i in sorted(picked))
    return out


# -- agreement -------------------------------------------------------------------------------


def percent_agreement(a: list, b: list) -> float | None:
    """Share of positions where a and b agree (None if there are none)."""
    if len(a) != len(b):
        raise ValueError("two raters' lists must be the same length")
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: list, b: list) -> float | None:
    """Cohen's kappa of two raters' labels of the same things: (p_o − p_e) / (1 − p_e);
    None when there is nothing to compare or p_e = 1 (both used one and the same label)."""
    p_o = percent_agreement(a, b)
    if p_o is None:
        return None
    n = len(a)
    labels = set(a) | set(b)
    p_e = sum((a.count(label) / n) * (b.count(label) / n) for label in labels)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def rating_agreement(a: list[int], b: list[int]) -> dict:
    """Two raters' ratings of the same things: n, exact-agreement rate and mean
    absolute difference (None when n is 0)."""
    if len(a) != len(b):
        raise ValueError("two raters' lists must be the same length")
    n = len(a)
    if not n:
        return {"n": 0, "exact": None, "mad": None}
    return {
        "n": n,
        "exact": sum(x == y for x, y in zip(a, b, strict=True)) / n,
        "mad": sum(abs(x - y) for x, y in zip(a, b, strict=True)) / n,
    }


def pair_agreement(
    verdicts: Mapping[str, Mapping], ratings: Mapping[str, Mapping], reviewers: list[str]
) -> list[dict]:
    """For each pair of reviewers (in the order given): the findings both judged (n,
    percent agreement, kappa) and the conversations both rated (n, exact, mad).
    `verdicts[r]` maps a finding key to "confirm"/"reject"; `ratings[r]` a
    conversation key to 1-5."""
    out = []
    for a, b in combinations(reviewers, 2):
        va, vb = verdicts.get(a, {}), verdicts.get(b, {})
        keys = sorted(set(va) & set(vb))
        la, lb = [va[k] for k in keys], [vb[k] for k in keys]
        ra, rb = ratings.get(a, {}), ratings.get(b, {})
        rkeys = sorted(set(ra) & set(rb))
        out.append(
            {
                "a": a,
                "b": b,
                "findings": len(keys),
                "agreement": percent_agreement(la, lb),
                "kappa": cohen_kappa(la, lb),
                "ratings": rating_agreement([ra[k] for k in rkeys], [rb[k] for k in rkeys]),
            }
        )
    return out


def mean_kappa(pairs: list[dict]) -> float | None:
    """Light's kappa: the mean of the pairs' kappas (pairs without one left out)."""
    values = [p["kappa"] for p in pairs if p["kappa"] is not None]
    return sum(values) / len(values) if values else None


def rule_precision(judged: Iterable[tuple[str, str, str]]) -> list[dict]:
    """Per rule, from (rule, category, verdict) of every submitted verdict: confirmed,
    rejected and precision = confirmed / (confirmed + rejected); lowest precision first."""
    rows: dict[str, dict] = {}
    for rule, category, verdict in judged:
        r = rows.setdefault(
            rule, {"rule": rule, "category": category, "confirmed": 0, "rejected": 0}
        )
        r["confirmed" if verdict == "confirm" else "rejected"] += 1
    for r in rows.values():
        total = r["confirmed"] + r["rejected"]
        r["precision"] = r["confirmed"] / total if total else None
    return sorted(rows.values(), key=lambda r: (r["precision"], r["rule"]))


def miss_counts(misses: Iterable[Mapping]) -> list[dict]:
    """Per rule: how many findings supervisors added and by whom; most first."""
    rows: dict[str, dict] = {}
    for m in misses:
        r = rows.setdefault(
            m["rule"], {"rule": m["rule"], "category": m["category"], "count": 0, "by": []}
        )
        r["count"] += 1
        if m["reviewer"] not in r["by"]:
            r["by"].append(m["reviewer"])
    return sorted(rows.values(), key=lambda r: (-r["count"], r["rule"]))


def percent(value: float | None) -> str:
    """A share as people read it: 66.7%; — when there is none."""
    return "—" if value is None else f"{100 * value:.1f}%"


def figure(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
