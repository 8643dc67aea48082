"""What import and export share: the report, the content hash both sides are
compared by, the folder's id, and one read of both sides and the last sync."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from .. import articles as articles_mod
from ..diff import FIELD_LABELS, article_diff
from ..errors import ValidationError
from ..models import Article
from ..store import article_from_row, now_iso

MARKER = ".kbcoach-sync"
MARKER_HEADER = "# kbcoach 同步目录标识：请与文章一起提交，不要修改，也不要复制到别的目录\n"
MARKER_LINE = re.compile(r"^folder:\s*([0-9a-f]{32})\s*$")
FIELDS = tuple(FIELD_LABELS)
CONTEXT = 8  # unchanged characters shown around a change in a conflict's summary
CHANGE_MAX = 40  # characters of one removed or added run shown
FIELD_SUMMARY_MAX = 160
QUIET = ("unchanged", "skipped")  # counted, not listed
UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')

# action -> how a report says it (import / export)
LABELS = {
    "created": "新增",
    "updated": "修改",
    "written": "写出",
    "unchanged": "未变",
    "conflict": "冲突",
    "error": "失败",
    "db_newer": "数据库较新",
    "file_newer": "文件较新",
    "missing": "文件已删除",
    "archived": "已归档",
    "db_deleted": "数据库中已删除",
    "skipped": "未导出",
}


@dataclass
class SyncItem:
    """What happened (or, in a dry run, would happen) to one article or file."""

    action: str
    article_id: str
    path: str
    message: str = ""
    diff: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "id": self.article_id,
            "path": self.path,
            "message": self.message,
            "diff": self.diff,
        }

    def line(self) -> str:
        who = f"{self.path}（{self.article_id}）" if self.article_id else self.path
        text = f"{LABELS[self.action]}  {who}"
        return f"{text}：{self.message}" if self.message else text


@dataclass
class SyncReport:
    """The outcome of an import or export: one item per article or file."""

    direction: str  # import | export
    dry_run: bool = False
    first_sync: bool = False
    items: list[SyncItem] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    def add(self, action: str, article_id: str, path: str, message: str = "", diff=None):
        self.items.append(SyncItem(action, article_id, path, message, list(diff or [])))

    def count(self, action: str) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def failed(self) -> int:
        return self.count("error")

    @property
    def conflicts(self) -> int:
        return self.count("conflict")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.conflicts

    @property
    def errors(self) -> list[str]:
        return [i.message for i in self.items if i.action == "error"]

    def summary(self) -> str:
        if self.direction == "import":
            head = (
                f"新增 {self.count('created')}，修改 {self.count('updated')}，"
                f"未变 {self.count('unchanged')}，失败 {self.failed}"
            )
            extra = ("conflict", "db_newer", "missing", "archived", "db_deleted")
        else:
            head = (
                f"写出 {self.count('written')}，更新 {self.count('updated')}，"
                f"未变 {self.count('unchanged')}，失败 {self.failed}"
            )
            extra = ("conflict", "file_newer", "missing", "db_deleted", "skipped")
        parts = [head] + [f"{LABELS[a]} {self.count(a)}" for a in extra if self.count(a)]
        return "，".join(parts)

    def to_dict(self) -> dict:
        counts = {a: self.count(a) for a in LABELS if self.count(a)}
        out = {
            "dry_run": self.dry_run,
            "first_sync": self.first_sync,
            "counts": counts,
            "failed": self.failed,
            "conflicts": self.conflicts,
            "errors": self.errors,
            "items": [i.to_dict() for i in self.items if i.action not in QUIET],
            "index": self.index,
        }
        if self.direction == "import":  # the keys `kbcoach import --json` always had
            out.update(
                added=self.count("created"),
                changed=self.count("updated"),
                unchanged=self.count("unchanged"),
            )
        return out


# -- content and its hash ------------------------------------------------------------


def _normal(article: Article) -> list:
    """The fields as a file written from them reads back (kb/articles.py dump_article
    then parse_article): trimmed, list items without blanks, the body without the
    newlines at its ends or trailing spaces, and "\r\n" as "\n" (browsers send it)."""

    def text(value) -> str:
        return str(value or "").replace("\r\n", "\n").strip()

    body = (article.body or "").replace("\r\n", "\n").rstrip().lstrip("\n")
    return [
        text(article.id),
        text(article.title),
        text(article.category),
        body,
        [text(t) for t in article.tags if text(t)],
        [text(t) for t in article.similar if text(t)],
        text(article.owner),
        text(article.review_by),
        text(article.status) or "published",
    ]


def content_hash(article: Article) -> str:
    """What both sides are compared by: equal for an article and the file written
    from it, whichever side it is read from."""
    data = json.dumps(_normal(article), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def fields_of(article: Article) -> dict:
    return {
        k: list(getattr(article, k)) if k in ("tags", "similar") else getattr(article, k)
        for k in FIELDS
    }


def diff_summary(old: Article, new: Article) -> list[str]:
    """One short line per changed field: 标签：…[-旧-]{+新+}…"""
    lines = []
    for change in article_diff(old, new):
        parts = []
        ops = change["ops"]
        for n, (kind, text) in enumerate(ops):
            text = text.replace("\n", "↵")
            if kind == "=":
                before = text[:CONTEXT] + ("…" if len(text) > CONTEXT else "")
                after = ("…" if len(text) > CONTEXT else "") + text[-CONTEXT:]
                if n == 0:
                    parts.append(after)
                elif n == len(ops) - 1:
                    parts.append(before)
                elif len(text) > 2 * CONTEXT:
                    parts.append(f"{text[:CONTEXT]}…{text[-CONTEXT:]}")
                else:
                    parts.append(text)
                continue
            shown = text[:CHANGE_MAX] + ("…" if len(text) > CHANGE_MAX else "")
            parts.append(f"[-{shown}-]" if kind == "-" else f"{{+{shown}+}}")
        line = "".join(parts)
        if len(line) > FIELD_SUMMARY_MAX:
            line = line[:FIELD_SUMMARY_MAX] + "…"
        lines.append(f"{change['label']}：{line}")
    return lines


def _changed_labels(old: Article, new: Article) -> str:
    return "、".join(c["label"] for c in article_diff(old, new)) or "无"


# -- the folder ----------------------------------------------------------------------


def folder_id(root: Path, *, create: bool) -> str | None:
    """The folder's sync id from its marker file; a new one is written when `create`
    (a folder that cannot be written is named by its path instead).  None: no marker
    and none made (a dry run)."""
    marker = root / MARKER
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except OSError as exc:
        raise ValidationError(f"同步标识文件无法读取：{exc.strerror}", path=MARKER) from None
    except UnicodeDecodeError:
        raise ValidationError("同步标识文件不是 UTF-8 文本", path=MARKER) from None
    if text is not None:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            found = MARKER_LINE.match(line.strip())
            if not found:
                raise ValidationError(
                    "同步标识文件格式错误（应为一行 folder: 加 32 位十六进制数；"
                    "若是 git 合并冲突，保留其中一个 folder 行）",
                    path=MARKER,
                    line=n,
                )
            return found[1]
        raise ValidationError("同步标识文件中没有 folder: 行", path=MARKER, line=1)
    if not create:
        return None
    ident = secrets.token_hex(16)
    try:
        root.mkdir(parents=True, exist_ok=True)
        write_whole(marker, f"{MARKER_HEADER}folder: {ident}\n")
    except OSError:
        return f"path:{root.resolve()}"
    return ident


def write_whole(target: Path, text: str) -> None:
    """Write a file whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


@dataclass
class Snapshot:
    """Both sides and the last sync, read once at the start."""

    folder: str | None
    state: dict[str, dict]
    disk: dict[str, Article]  # id -> article read from its file (source: relative path)
    errors: list[ValidationError]
    bad_paths: set[str]
    disk_hash: dict[str, str]


def read_both(kb, root: Path, *, create_marker: bool) -> Snapshot:
    from storage.sync import sync_state

    folder = folder_id(root, create=create_marker)
    state = sync_state(kb.database, folder) if folder else {}
    found, errors = articles_mod.load_dir(root) if root.is_dir() else ([], [])
    disk = {a.id: a for a in found}
    return Snapshot(
        folder=folder,
        state=state,
        disk=disk,
        errors=errors,
        bad_paths={e.path for e in errors},
        disk_hash={i: content_hash(a) for i, a in disk.items()},
    )


def db_rows(kb, ids) -> dict[str, tuple[Article, int, dict]]:
    """id -> (article, version, row) for the stored ones among `ids`."""
    return {
        row["id"]: (article_from_row(row), row["version"], row)
        for row in kb.store.articles.rows_by_id(ids)
    }


def base_note(kb, article_id: str, last: dict | None, disk: Article | None, db, row) -> str:
    """Which fields each side changed since the last sync (when its revision is kept)."""
    saved = f"第 {row['version']} 版，{row['updated_by']} 于 {row['updated_at'][:16].replace('T', ' ')} 保存"
    if last is None:
        return f"此目录与数据库此前未同步过这篇文章，无法判断哪边较新（数据库：{saved}）"
    base = kb.store.revision(article_id, last["version"])
    if base is None or content_hash(base) != last["sha256"]:
        return f"文件与数据库自上次同步（第 {last['version']} 版）后都改过（数据库：{saved}）"
    mine = _changed_labels(base, disk) if disk is not None else "删除了文件"
    return (
        f"文件与数据库自上次同步（第 {last['version']} 版）后都改过：文件改了{mine}；"
        f"数据库改了{_changed_labels(base, db)}（{saved}）"
    )


def unknown_forced(report: SyncReport, force, known, why: str) -> None:
    """A --force id that names nothing is a mistake worth saying (a typo, usually)."""
    for article_id in sorted(set(force) - set(known)):
        report.add("error", article_id, "", f"--force {article_id}：{why}")


def save_state(kb, snap: Snapshot, entries: dict[str, dict], drop: list[str]) -> None:
    from storage.sync import save_sync_state

    if snap.folder and (entries or drop):
        save_sync_state(kb.database, snap.folder, entries, drop, now_iso())
