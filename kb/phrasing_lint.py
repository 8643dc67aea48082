"""Phrasing lint (issue 12, item 7): the coach's findings on the standard wordings of a
phrasing (标准话术) or norm (服务规范) article, and the publishing gate built on them.

What is checked: the article's standard wordings as `kb.render.wordings_with_lines`
defines them, i.e. every blockquote paragraph (lines starting with ">") outside fenced
code, which is exactly what the article page offers agents to copy.  Bad examples
("不要说", "常见错误") are written as list items, not quotes, and are not checked.
Placeholders such as `{客户称呼}` are checked as written.

How: each wording is checked by the coach as a draft reply in the middle of a chat
(`Checker.check_reply(..., position="middle")`), so no greeting or closing finding is
made for a phrase that is not a whole conversation.  Findings carry the body line and
column of their match (1-based, lines of the body as the editor shows it).

The gate: a save that publishes a phrasing or norm article (its status becomes 已发布,
or an already published one changes its body) is refused (`LintBlocked`) while a wording
has a finding of level error or fatal, unless an override with a reason is given; the
override is written to the audit log with the reason and the findings.  The checker is
passed in (any object with `check_reply`): this module does not build one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Conflict, ValidationError
from .render import wordings_with_lines

LINTED_CATEGORIES = ("phrasing", "norm")
BLOCKING_LEVELS = ("error", "fatal")
LEVEL_LABELS = {"info": "提示", "warning": "警告", "error": "错误", "fatal": "严重"}
MAX_WORDINGS = 200  # wordings checked per article; the rest are reported as not checked
MAX_WORDING_CHARS = 5000  # as a draft reply (coach.limits.MAX_REPLY_CHARS)
REASON_MAX = 500
AUDIT_FINDINGS = 20  # findings written into one audit entry


class LintBlocked(Conflict):
    """Publishing refused: a standard wording has an error-level finding and no
    override with a reason was given.  `findings` are the blocking ones."""

    field = "lint_override"

    def __init__(self, message: str, findings: list[dict]):
        super().__init__(message)
        self.message = message
        self.findings = findings


@dataclass
class LintResult:
    """What the lint found in one article body."""

    applies: bool  # a phrasing or norm article
    wordings: int  # standard wordings found
    findings: list[dict]
    unchecked: list[dict]  # wordings not checked: too many, too long, or cut by time

    @property
    def blocking(self) -> list[dict]:
        return [f for f in self.findings if f["level"] in BLOCKING_LEVELS]

    def to_dict(self) -> dict:
        return {
            "applies": self.applies,
            "wordings": self.wordings,
            "findings": self.findings,
            "blocking": len(self.blocking),
            "unchecked": self.unchecked,
        }


def applies_to(category: str) -> bool:
    return category in LINTED_CATEGORIES


def lint_body(
    checker, body: str, category: str = "phrasing", *, limit: int = MAX_WORDINGS
) -> LintResult:
    """The coach's findings on the standard wordings of an article body (nothing for a
    category that is not linted), in body order, each with its line and column; past
    `limit` wordings the rest are listed as unchecked."""
    if not applies_to(category):
        return LintResult(False, 0, [], [])
    wordings = wordings_with_lines(body)
    findings: list[dict] = []
    unchecked: list[dict] = []
    for n, wording in enumerate(wordings):
        if n >= limit:
            unchecked.append(
                {"line": wording.line, "reason": f"未检查：每篇最多检查 {limit} 条话术"}
            )
            continue
        if len(wording.text) > MAX_WORDING_CHARS:
            unchecked.append(
                {"line": wording.line, "reason": f"未检查：话术超过 {MAX_WORDING_CHARS} 个字"}
            )
            continue
        cut: list[dict] = []
        for f in checker.check_reply(wording.text, None, "middle", cut):
            findings.append(_located(f, n, wording))
        if cut:
            unchecked.append({"line": wording.line, "reason": cut[0]["reason"]})
    findings.sort(key=lambda f: (f["line"], f["column"]))
    return LintResult(True, len(wordings), findings, unchecked)


def _located(f: dict, index: int, wording) -> dict:
    start, end = f["span"]
    line, column = wording.where(start)
    out = {
        "line": line,
        "column": column,
        "end_line": wording.where(end - 1)[0] if end > start else line,
        "wording": index,
        "text": wording.text,
        "rule": f["rule"],
        "category": f["category"],
        "level": f["level"],
        "level_label": LEVEL_LABELS.get(f["level"], f["level"]),
        "span": [start, end],
        "match": f["match"],
        "message": f["message"],
        "suggestion": f.get("suggestion") or "",
    }
    if f.get("norm"):
        out["norm"] = f["norm"]
    return out


def summary(f: dict) -> str:
    """One finding on one line, for messages and the audit log."""
    return f"第{f['line']}行「{f['match']}」{f['level_label']}（{f['rule']}）"


def override_reason(checked: bool, reason) -> str | None:
    """The override a form or request gives: None without the checkbox, else the
    reason, which is then required (Chinese message on the reason field)."""
    if not checked:
        return None
    if not isinstance(reason, str):
        raise ValidationError("忽略检查的理由应为文字", field="lint_reason")
    reason = reason.replace("\r\n", "\n").strip()
    if not reason:
        raise ValidationError("勾选了「忽略话术检查并发布」时，请填写理由", field="lint_reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(
            f"理由过长：最多 {REASON_MAX} 个字，现在 {len(reason)} 个字", field="lint_reason"
        )
    return reason


@dataclass
class PublishLint:
    """The gate a publishing surface hands to `kb.authoring.save_article`: the checker
    to lint with and the override (None: no override) the trainer gave."""

    checker: object
    override: str | None = None

    def publishes(self, before, after) -> bool:
        """Does this save publish the wording of a linted article?"""
        if after.status != "published" or not applies_to(after.category):
            return False
        return (
            before is None
            or before.status != "published"
            or before.body != after.body
            or before.category != after.category
        )

    def check(self, before, after) -> list[dict]:
        """Before the save: refuse (LintBlocked) or return the overridden findings."""
        if not self.publishes(before, after):
            return []
        blocking = lint_body(self.checker, after.body, after.category).blocking
        if blocking and self.override is None:
            shown = "；".join(summary(f) for f in blocking[:3])
            more = f" 等 {len(blocking)} 处" if len(blocking) > 3 else ""
            raise LintBlocked(
                f"未保存：标准话术中有错误级问题（{shown}{more}）。请修改话术，"
                "或勾选「忽略话术检查并发布」并填写理由（命令行：--lint-override 理由）。",
                blocking,
            )
        return blocking

    def audit(self, audit, who: str, article_id: str, version: int, overridden: list[dict]):
        """After the save: the override, its reason and the findings, in the audit log."""
        if not overridden:
            return
        audit(
            who,
            "article.lint_override",
            article_id,
            {
                "version": version,
                "reason": self.override,
                "findings": [summary(f) for f in overridden[:AUDIT_FINDINGS]],
                "count": len(overridden),
            },
        )
