"""Files round trip: keep a folder of Markdown articles (as teams keep in git) and the
database in step, without ever overwriting a change either way.

The state of the last sync is kept in the database (``kb_sync``), per folder and
article: where the file is, the article's version then, and the hash of the content
both sides had.  A side "changed since the last sync" when its content hash differs
from that one.  The folder is named by the id in its ``.kbcoach-sync`` file (written
on the first sync, meant to be committed with the articles), not by its path: a fresh
clone in another place (a CI job) is the same folder.  In the database rather than in
a state file in the folder, because the state describes one database's relation to the
folder: a second database (a trainer's own instance, a staging copy) keeps its own,
a backup restores the state that goes with its articles, and git never sees a state
file change (or a merge conflict in one) on every sync.

Content, not versions, decides: an edit undone, or the same edit made on both sides,
is no change and no conflict; a folder never synced with this database (no state)
is compared as it is: equal articles are recorded, different ones are conflicts.

Every write to the database goes through ``kb.authoring.save_article`` (the editor's
path: validation, a revision, compare-and-set on the version read, the audit log).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from . import articles as articles_mod
from .authoring import save_article
from .diff import FIELD_LABELS, article_diff
from .errors import KbError, StaleVersion, ValidationError
from .models import Article
from .store import article_from_row, now_iso

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


def _fields(article: Article) -> dict:
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
        _write(marker, f"{MARKER_HEADER}folder: {ident}\n")
    except OSError:
        return f"path:{root.resolve()}"
    return ident


def _write(target: Path, text: str) -> None:
    """Write a file whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


@dataclass
class _Snapshot:
    """Both sides and the last sync, read once at the start."""

    folder: str | None
    state: dict[str, dict]
    disk: dict[str, Article]  # id -> article read from its file (source: relative path)
    errors: list[ValidationError]
    bad_paths: set[str]
    disk_hash: dict[str, str]


def _snapshot(kb, root: Path, *, create_marker: bool) -> _Snapshot:
    from storage.sync import sync_state

    folder = folder_id(root, create=create_marker)
    state = sync_state(kb.database, folder) if folder else {}
    found, errors = articles_mod.load_dir(root) if root.is_dir() else ([], [])
    disk = {a.id: a for a in found}
    return _Snapshot(
        folder=folder,
        state=state,
        disk=disk,
        errors=errors,
        bad_paths={e.path for e in errors},
        disk_hash={i: content_hash(a) for i, a in disk.items()},
    )


def _db_rows(kb, ids) -> dict[str, tuple[Article, int, dict]]:
    """id -> (article, version, row) for the stored ones among `ids`."""
    return {
        row["id"]: (article_from_row(row), row["version"], row)
        for row in kb.store.articles.rows_by_id(ids)
    }


def _base_note(kb, article_id: str, last: dict | None, disk: Article | None, db, row) -> str:
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


def _unknown_forced(report: SyncReport, force, known, why: str) -> None:
    """A --force id that names nothing is a mistake worth saying (a typo, usually)."""
    for article_id in sorted(set(force) - set(known)):
        report.add("error", article_id, "", f"--force {article_id}：{why}")


def _save_state(kb, snap: _Snapshot, entries: dict[str, dict], drop: list[str]) -> None:
    from storage.sync import save_sync_state

    if snap.folder and (entries or drop):
        save_sync_state(kb.database, snap.folder, entries, drop, now_iso())


# -- import --------------------------------------------------------------------------


def import_folder(
    kb,
    root: str | Path,
    *,
    by: str = "import",
    dry_run: bool = False,
    archive_missing: bool = False,
    force: frozenset[str] | set[str] = frozenset(),
) -> SyncReport:
    """Bring the folder's changes into the database: new files create articles, files
    changed since the last sync update articles the database did not change since;
    an article changed on both sides is a conflict and is left as it is on both.
    `force`: ids whose file wins over the database (after a conflict was looked at)."""
    root = Path(root)
    if not root.is_dir():
        raise ValidationError("目录不存在", path=str(root))
    snap = _snapshot(kb, root, create_marker=not dry_run)
    report = SyncReport("import", dry_run=dry_run, first_sync=not snap.state)
    for err in snap.errors:
        report.add("error", "", err.path, str(err))
    _unknown_forced(report, force, snap.disk, "目录中没有这篇文章")
    db = _db_rows(kb, list(snap.disk) + list(snap.state))
    entries: dict[str, dict] = {}
    drop: list[str] = []
    with kb.deferred_index():
        for article_id, disk in snap.disk.items():
            _import_one(kb, report, snap, db, disk, entries, by, dry_run, article_id in force)
        for article_id, last in snap.state.items():
            if article_id in snap.disk or last["path"] in snap.bad_paths:
                continue
            _import_missing(
                kb,
                report,
                db.get(article_id),
                article_id,
                last,
                entries,
                drop,
                by,
                dry_run,
                archive_missing,
            )
    if not dry_run:
        _save_state(kb, snap, entries, drop)
        report.index = kb.apply_changes()
    return report


def _import_one(kb, report, snap, db, disk: Article, entries, by, dry_run, forced) -> None:
    article_id, path = disk.id, disk.source
    last = snap.state.get(article_id)
    disk_hash = snap.disk_hash[article_id]
    stored = db.get(article_id)
    if stored is None:
        if last is not None and last["sha256"] == disk_hash and not forced:
            report.add(
                "db_deleted",
                article_id,
                path,
                "文章已在数据库中删除，文件自上次同步后未改，未重新创建",
            )
            return
        if last is not None and not forced:
            report.add(
                "conflict",
                article_id,
                path,
                "文章已在数据库中删除，而文件自上次同步后改过：未重新创建",
            )
            return
        _write_article(kb, report, disk, 0, "created", entries, by, dry_run)
        return
    current, version, row = stored
    db_hash = content_hash(current)
    if db_hash == disk_hash:
        report.add("unchanged", article_id, path)
        entries[article_id] = {"path": path, "version": version, "sha256": disk_hash}
        return
    file_changed = last is None or last["sha256"] != disk_hash
    db_changed = last is None or last["sha256"] != db_hash
    if forced or (file_changed and not db_changed):
        _write_article(kb, report, disk, version, "updated", entries, by, dry_run)
    elif db_changed and not file_changed:
        report.add(
            "db_newer",
            article_id,
            path,
            f"数据库自上次同步后改过（第 {version} 版），文件未改：未读入（export 会写出）",
        )
    else:
        report.add(
            "conflict",
            article_id,
            path,
            _base_note(kb, article_id, last, disk, current, row) + "，两边都未覆盖",
            ["差异（数据库 → 文件）"] + diff_summary(current, disk),
        )


def _write_article(kb, report, disk: Article, version: int, action, entries, by, dry_run):
    article_id, path = disk.id, disk.source
    if dry_run:
        report.add(action, article_id, path)
        return
    try:
        save_article(kb, article_id, _fields(disk), by, create=version == 0, base_version=version)
    except StaleVersion as exc:
        report.add("conflict", article_id, path, f"读入时数据库正被修改：{exc.message}")
        return
    except ValidationError as exc:
        report.add("error", article_id, path, f"{path}: {exc.message}")
        return
    except KbError as exc:
        report.add("error", article_id, path, f"{path}: {exc}")
        return
    new_version = kb.store.get_meta_row(article_id)["version"]
    entries[article_id] = {"path": path, "version": new_version, "sha256": content_hash(disk)}
    report.add(action, article_id, path)


def _import_missing(
    kb, report, stored, article_id, last, entries, drop, by, dry_run, archive_missing
) -> None:
    """An article synced with the folder whose file is gone."""
    path = last["path"]
    if stored is None:
        drop.append(article_id)  # gone on both sides
        return
    current, version, row = stored
    if content_hash(current) != last["sha256"]:
        report.add(
            "conflict",
            article_id,
            path,
            f"文件已删除，而数据库自上次同步后改过（第 {version} 版，{row['updated_by']}）：未归档",
        )
        return
    if not archive_missing:
        report.add(
            "missing",
            article_id,
            path,
            "文件已删除；数据库中的文章保留（用 --archive-missing 归档）",
        )
        return
    if current.status == "archived":
        report.add("archived", article_id, path, "文件已删除，文章原已归档")
    elif dry_run:
        report.add("archived", article_id, path, "文件已删除，将归档")
    else:
        try:
            save_article(kb, article_id, {"status": "archived"}, by, base_version=version)
        except KbError as exc:
            report.add("conflict", article_id, path, f"归档时数据库正被修改：{exc}")
            return
        report.add("archived", article_id, path, "文件已删除，文章已归档")
    if not dry_run:
        drop.append(article_id)


# -- export --------------------------------------------------------------------------


def export_folder(
    kb,
    root: str | Path,
    *,
    include_all: bool = False,
    dry_run: bool = False,
    force: frozenset[str] | set[str] = frozenset(),
) -> SyncReport:
    """Write the database's changes into the folder: articles changed in the database
    since the last sync, and new ones (published ones only unless `include_all`;
    an article the folder already holds is kept in step whatever its status).  A file
    changed since the last sync is never overwritten (a conflict when the database
    changed too).  `force`: ids whose database version wins over the file."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValidationError("不是目录", path=str(root))
    snap = _snapshot(kb, root, create_marker=not dry_run)
    report = SyncReport("export", dry_run=dry_run, first_sync=not snap.state)
    for err in snap.errors:
        report.add("error", "", err.path, str(err) + "（文件有错误：未覆盖）")
    # paths taken by files (good or bad), so a new article never lands on one
    taken = {a.source.casefold() for a in snap.disk.values()} | {
        p.casefold() for p in snap.bad_paths
    }
    entries: dict[str, dict] = {}
    drop: list[str] = []
    seen: set[str] = set()
    _unknown_forced(report, force, _db_rows(kb, force), "数据库中没有这篇文章")
    for row in kb.store.articles.iter_rows():
        current, version = article_from_row(row), row["version"]
        seen.add(current.id)
        _export_one(
            kb,
            report,
            snap,
            root,
            current,
            version,
            row,
            taken,
            entries,
            include_all,
            dry_run,
            current.id in force,
        )
    for article_id, last in snap.state.items():
        if article_id in seen:
            continue
        disk = snap.disk.get(article_id)
        if disk is None and last["path"] not in snap.bad_paths:
            drop.append(article_id)  # gone on both sides
        else:
            report.add(
                "db_deleted",
                article_id,
                disk.source if disk else last["path"],
                "文章已在数据库中删除；文件保留",
            )
    if not dry_run:
        _save_state(kb, snap, entries, drop)
    return report


def _export_one(
    kb,
    report,
    snap,
    root,
    current: Article,
    version,
    row,
    taken,
    entries,
    include_all,
    dry_run,
    forced,
) -> None:
    article_id = current.id
    last = snap.state.get(article_id)
    disk = snap.disk.get(article_id)
    db_hash = content_hash(current)
    if disk is None:
        path = last["path"] if last else None
        if path is not None and path in snap.bad_paths and not forced:
            return  # reported with the file's error
        if last is None and not include_all and current.status != "published":
            report.add("skipped", article_id, "", "未发布（用 --all 一并导出）")
            return
        if last is not None and not forced:
            if db_hash != last["sha256"]:
                report.add(
                    "conflict",
                    article_id,
                    path,
                    f"文件已删除，而数据库自上次同步后改过（第 {version} 版，"
                    f"{row['updated_by']}）：未重新写出",
                )
            else:
                report.add(
                    "missing",
                    article_id,
                    path,
                    "文件已删除，未重新写出（用 import --archive-missing 归档，"
                    "或用 --force 重新写出）",
                )
            return
        if path is None:
            path = _free_path(current, taken)
        _export_write(report, root, current, version, path, db_hash, entries, dry_run, "written")
        return
    path = disk.source
    disk_hash = snap.disk_hash[article_id]
    if disk_hash == db_hash:
        report.add("unchanged", article_id, path)
        entries[article_id] = {"path": path, "version": version, "sha256": db_hash}
        return
    file_changed = last is None or last["sha256"] != disk_hash
    db_changed = last is None or last["sha256"] != db_hash
    if forced or (db_changed and not file_changed):
        _export_write(report, root, current, version, path, db_hash, entries, dry_run, "updated")
    elif file_changed and not db_changed:
        report.add(
            "file_newer",
            article_id,
            path,
            "文件自上次同步后改过，数据库未改：未覆盖（import 会读入）",
        )
    else:
        report.add(
            "conflict",
            article_id,
            path,
            _base_note(kb, article_id, last, disk, current, row) + "，两边都未覆盖",
            ["差异（数据库 → 文件）"] + diff_summary(current, disk),
        )


def _export_write(report, root, current, version, path, db_hash, entries, dry_run, action):
    if not dry_run:
        try:
            _write(root / path, articles_mod.dump_article(current))
        except OSError as exc:
            report.add("error", current.id, path, f"{path}: 无法写入：{exc.strerror}")
            return
        entries[current.id] = {"path": path, "version": version, "sha256": db_hash}
    report.add(action, current.id, path)


def _free_path(article: Article, taken: set[str]) -> str:
    """`<category>/<slug>.md` (made safe as a file name), numbered when another file
    already has that name."""
    name = articles_mod.article_filename(article)
    folder, _, stem = name[: -len(".md")].partition("/")
    stem = UNSAFE_NAME.sub("-", stem).lstrip(".") or "article"
    path = f"{folder}/{stem}.md"
    n = 2
    while path.casefold() in taken:
        path = f"{folder}/{stem}-{n}.md"
        n += 1
    taken.add(path.casefold())
    return path


__all__ = [
    "MARKER",
    "SyncItem",
    "SyncReport",
    "content_hash",
    "diff_summary",
    "export_folder",
    "folder_id",
    "import_folder",
]
