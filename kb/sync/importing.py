"""`kbcoach import DIR`: the folder's changes into the database, never over a change
made there since the last sync."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

from ..authoring import save_article
from ..errors import KbError, StaleVersion, ValidationError
from ..models import Article
from .common import (
    SyncReport,
    base_note,
    content_hash,
    db_rows,
    diff_summary,
    fields_of,
    read_both,
    save_state,
    unknown_forced,
)

# the publishing gate of this import (kb.phrasing_lint.PublishLint), or None
_LINT: ContextVar = ContextVar("kb_sync_lint", default=None)


def import_folder(
    kb,
    root: str | Path,
    *,
    by: str = "import",
    dry_run: bool = False,
    archive_missing: bool = False,
    force: frozenset[str] | set[str] = frozenset(),
    lint=None,
) -> SyncReport:
    """Bring the folder's changes into the database: new files create articles, files
    changed since the last sync update articles the database did not change since;
    an article changed on both sides is a conflict and is left as it is on both.
    `force`: ids whose file wins over the database (after a conflict was looked at).
    `lint` (a PublishLint): a published phrasing or norm article whose wordings have an
    error-level finding is reported as an error and not written, as in the editor,
    unless the lint carries an override (audit-logged)."""
    token = _LINT.set(lint)
    try:
        return _import_folder(kb, root, by, dry_run, archive_missing, force)
    finally:
        _LINT.reset(token)


def _import_folder(kb, root, by, dry_run, archive_missing, force) -> SyncReport:
    root = Path(root)
    if not root.is_dir():
        raise ValidationError("目录不存在", path=str(root))
    snap = read_both(kb, root, create_marker=not dry_run)
    report = SyncReport("import", dry_run=dry_run, first_sync=not snap.state)
    for err in snap.errors:
        report.add("error", "", err.path, str(err))
    unknown_forced(report, force, snap.disk, "目录中没有这篇文章")
    db = db_rows(kb, list(snap.disk) + list(snap.state))
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
        save_state(kb, snap, entries, drop)
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
            base_note(kb, article_id, last, disk, current, row) + "，两边都未覆盖",
            ["差异（数据库 → 文件）"] + diff_summary(current, disk),
        )


def _write_article(kb, report, disk: Article, version: int, action, entries, by, dry_run):
    article_id, path = disk.id, disk.source
    if dry_run:
        report.add(action, article_id, path)
        return
    try:
        save_article(
            kb,
            article_id,
            fields_of(disk),
            by,
            create=version == 0,
            base_version=version,
            lint=_LINT.get(),
        )
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
