"""`kbcoach export DIR`: the database's changes into the folder, never over a file
changed since the last sync."""

from __future__ import annotations

from pathlib import Path

from .. import articles as articles_mod
from ..errors import ValidationError
from ..models import Article
from ..store import article_from_row
from .common import (
    UNSAFE_NAME,
    SyncReport,
    base_note,
    content_hash,
    db_rows,
    diff_summary,
    read_both,
    save_state,
    unknown_forced,
    write_whole,
)


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
    snap = read_both(kb, root, create_marker=not dry_run)
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
    unknown_forced(report, force, db_rows(kb, force), "数据库中没有这篇文章")
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
        save_state(kb, snap, entries, drop)
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
            base_note(kb, article_id, last, disk, current, row) + "，两边都未覆盖",
            ["差异（数据库 → 文件）"] + diff_summary(current, disk),
        )


def _export_write(report, root, current, version, path, db_hash, entries, dry_run, action):
    if not dry_run:
        try:
            write_whole(root / path, articles_mod.dump_article(current))
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
