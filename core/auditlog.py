"""The audit log as people read it: filters (who, what, which object, from–to dates),
action and detail names in Chinese, and a CSV export that Excel opens correctly.

The web page and the CSV export use these; the rows come from kb.accounts (storage
does the SQL).  Times are stored and filtered in UTC, as ISO text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from kb.accounts import Accounts
from kb.models import ROLE_LABELS, STATUS_LABELS

ACTION_NAMES = {
    "user.add": "新增账号",
    "user.passwd": "重设密码",
    "user.roles": "修改角色",
    "user.disable": "停用账号",
    "user.enable": "启用账号",
    "user.logout_all": "全部设备退出",
    "token.create": "创建 API 令牌",
    "token.revoke": "吊销 API 令牌",
    "pin.add": "置顶答案",
    "pin.remove": "取消置顶",
    "article.create": "新建文章",
    "article.update": "修改文章",
    "article.publish": "发布文章",
    "article.status": "修改文章状态",
    "article.import": "导入文章",
    "article.submit": "提交审核",
    "article.send_back": "退回修改",
    "article.approve": "审核通过",
    "article.comment": "评论文章",
    "article.restore": "恢复文章旧版本",
    "article.lint_override": "忽略话术检查发布",
    "audit.run": "新建质检批次",
    "audit.resume": "继续质检",
    "audit.export": "导出质检结果",
    "rules.update": "修改质检规则",
    "rules.rollback": "回滚质检规则",
    "appeal.create": "提出申诉",
    "appeal.accept": "采纳申诉",
    "appeal.reject": "驳回申诉",
    "calibration.create": "抽取校准样本",
    "calibration.answer": "保存校准评审",
    "calibration.miss": "补充漏检问题",
    "calibration.miss_delete": "删除漏检问题",
    "calibration.submit": "提交校准评审",
    "calibration.observe": "只看校准报告",
}
# a filter value ending with "." selects every action of the group
ACTION_GROUPS = {
    "user.": "账号（全部）",
    "token.": "API 令牌（全部）",
    "article.": "文章（全部）",
    "pin.": "置顶（全部）",
    "audit.": "质检批次（全部）",
    "rules.": "质检规则（全部）",
    "appeal.": "申诉（全部）",
    "calibration.": "质检校准（全部）",
}
DETAIL_LABELS = {
    "roles": "角色",
    "must_change": "下次登录须改密码",
    "name": "用途",
    "sessions": "结束的会话数",
    "pin": "置顶编号",
    "query": "查询",
    "version": "版本",
    "status": "状态",
    "from": "原状态",
    "to": "新状态",
    "added": "新增",
    "changed": "修改",
    "failed": "失败",
    "conversations": "会话数",
    "errors": "无法读取的记录",
    "note": "说明",
    "file": "文件",
    "item": "会话编号",
    "finding": "问题序号",
    "rule": "规则",
    "comment": "意见",
    "from_version": "恢复自版本",
    "reason": "理由",
    "findings": "检查发现",
    "count": "问题数",
    "seed": "随机种子",
    "confirmed": "成立",
    "rejected": "不成立",
    "turn": "轮次",
    "miss": "漏检编号",
    "rating": "评分",
}
_STATUS_KEYS = {"status", "from", "to"}
_ACTION_RE = re.compile(r"[a-z_]{1,32}(\.[a-z_]{0,32})?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_ACTOR = 64
MAX_TARGET = 200
EXPORT_CHUNK = 1000
CSV_HEADER = ("时间（UTC）", "操作人", "操作", "操作代码", "对象", "详情")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def action_name(action: str) -> str:
    return ACTION_NAMES.get(action, action)


def _value(key: str, value) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None or value == "":
        return "—"
    if key == "roles" and isinstance(value, list):
        return "、".join(ROLE_LABELS.get(r, str(r)) for r in value)
    if key in _STATUS_KEYS and isinstance(value, str):
        return STATUS_LABELS.get(value, value)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def detail_items(detail: str | Mapping | None) -> list[tuple[str, str]]:
    """An entry's detail as (label, value) pairs in Chinese where the key is known."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail) if detail.strip() else {}
        except ValueError:
            return [("详情", detail)]
    if not isinstance(detail, Mapping):
        return [("详情", str(detail))] if detail else []
    return [(DETAIL_LABELS.get(k, k), _value(k, v)) for k, v in detail.items()]


def detail_text(detail) -> str:
    """The detail on one line: 标签：值；标签：值."""
    return "；".join(f"{label}：{value}" for label, value in detail_items(detail))


@dataclass
class AuditFilter:
    """The filters of the audit-log page, read from a query string; `errors` maps a
    field to its Chinese message (that filter is then not applied)."""

    actor: str = ""
    action: str = ""
    target: str = ""
    date_from: str = ""
    date_to: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AuditFilter:
        f = cls(
            actor=(args.get("actor") or "").strip(),
            action=(args.get("action") or "").strip(),
            target=(args.get("target") or "").strip(),
            date_from=(args.get("from") or "").strip(),
            date_to=(args.get("to") or "").strip(),
        )
        if len(f.actor) > MAX_ACTOR:
            f.errors["actor"] = f"操作人最多 {MAX_ACTOR} 个字符"
        if len(f.target) > MAX_TARGET:
            f.errors["target"] = f"对象最多 {MAX_TARGET} 个字符"
        if f.action and not _ACTION_RE.fullmatch(f.action):
            f.errors["action"] = "没有这种操作"
        start, end = f._date("from", f.date_from), f._date("to", f.date_to)
        if start and end and start > end:
            f.errors["to"] = "结束日期不能早于开始日期"
        return f

    def _date(self, name: str, text: str) -> dt.date | None:
        if not text:
            return None
        try:
            if not _DATE_RE.fullmatch(text):
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        except ValueError:
            self.errors[name] = "日期应为 年-月-日，例如 2026-11-29"
            return None

    @property
    def active(self) -> bool:
        return bool(self.where())

    def where(self) -> dict:
        """The storage filter (see AccountRepository._audit_where); bad fields are left out."""
        where: dict = {}
        if self.actor and "actor" not in self.errors:
            where["actor"] = self.actor
        if self.target and "target" not in self.errors:
            where["target"] = self.target
        if self.action and "action" not in self.errors:
            where["action"] = self.action
        if "to" not in self.errors:
            if self.date_from and "from" not in self.errors:
                where["since"] = self.date_from
            if self.date_to:
                where["before"] = (
                    dt.date.fromisoformat(self.date_to) + dt.timedelta(1)
                ).isoformat()
        return where

    def args(self) -> dict[str, str]:
        """The query-string arguments that give this filter again (for links)."""
        pairs = {
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "from": self.date_from,
            "to": self.date_to,
        }
        return {k: v for k, v in pairs.items() if v}


def iter_entries(acc: Accounts, where: Mapping) -> Iterator[dict]:
    """Every matching entry, newest first, read a chunk at a time (keyset on id)."""
    before_id = None
    while True:
        chunk = acc.audit_entries(
            EXPORT_CHUNK, 0, {**where, **({"before_id": before_id} if before_id else {})}
        )
        yield from chunk
        if len(chunk) < EXPORT_CHUNK:
            return
        before_id = chunk[-1]["id"]


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(values) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([safe_cell(v) for v in values])
    return buf.getvalue()


def csv_chunks(entries: Iterator[dict]) -> Iterator[str]:
    """The CSV text: a byte-order mark (so Excel reads UTF-8), the header, one line per entry."""
    yield "\ufeff" + csv_row(CSV_HEADER)
    lines: list[str] = []
    for e in entries:
        lines.append(
            csv_row(
                (
                    (e["at"] or "")[:19].replace("T", " "),
                    e["actor"],
                    action_name(e["action"]),
                    e["action"],
                    e["target"],
                    detail_text(e["detail"]),
                )
            )
        )
        if len(lines) >= 200:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)
