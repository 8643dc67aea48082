"""The knowledge base as one object: store + index + search, for the web and CLI."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import articles as articles_mod
from .errors import ValidationError
from .index import IndexManager, document
from .models import CATEGORIES, Article
from .runs import Runs
from .search import SearchEngine, SearchResult
from .searchlog import SearchLog
from .store import PRIVATE_DIR, Store, make_private, now_iso

JSONL_BATCH = 2000
MAX_JSONL_LINE = 2_000_000
INDEX_DIRTY = "index.dirty"
REBUILD_FRACTION = 0.2  # above this share of changed articles, rebuild instead of updating


@dataclass
class ImportReport:
    """Outcome of an import: counts and one located error per failed record."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    def summary(self) -> str:
        return f"新增 {self.added}，修改 {self.changed}，未变 {self.unchanged}，失败 {self.failed}"

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": self.errors,
            "index": self.index,
        }


@dataclass
class DocumentSource:
    """Documents indexed beside the articles (e.g. the standard scripts), of one doctype.

    `documents` yields whoosh documents of the kb schema; `fingerprint` changes whenever
    they would change, so the index is refreshed only when needed.  Both are called
    lazily: registering a source costs nothing until the index is built or synced.
    """

    name: str
    doctype: str
    documents: Callable[[], Iterable[dict]]
    fingerprint: Callable[[], str]

    @property
    def setting_key(self) -> str:
        return f"index.source.{self.name}"


def instance_paths(instance: str | Path) -> dict[str, Path]:
    root = Path(instance)
    return {"root": root, "db": root / "kbcoach.db", "index": root / "index"}


class KnowledgeBase:
    """Facade over one instance folder. Store connections are per thread."""

    def __init__(self, instance: str | Path):
        paths = instance_paths(instance)
        self.root = paths["root"]
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        make_private(self.root, PRIVATE_DIR)  # also for instances made before this rule
        self.db_path = paths["db"]
        self.indexes = IndexManager(paths["index"])
        self.engine = SearchEngine(self.indexes)
        self.search_log = SearchLog(self.db_path)
        self._local = threading.local()
        self.sources: dict[str, DocumentSource] = {}

    @property
    def store(self) -> Store:
        st = getattr(self._local, "store", None)
        if st is None:
            st = self._local.store = Store(self.db_path)
        return st

    def close(self) -> None:
        st = getattr(self._local, "store", None)
        if st is not None:
            st.close()
            self._local.store = None

    # -- reading ---------------------------------------------------------------

    def get(self, article_id: str) -> Article:
        return self.store.get(article_id)

    def search(self, q: str, *, via: str = "api", log: bool = True, **kwargs) -> SearchResult:
        """Search and record the query (text, filters, hits, latency)."""
        result = self.engine.search(q, **kwargs)
        if log:
            self.search_log.add([self._log_entry(result, via, kwargs)])
        return result

    def search_many(self, queries: list[str], *, via: str = "cli", **kwargs) -> list[SearchResult]:
        """Batch search with one log write at the end."""
        results = [self.engine.search(q, **kwargs) for q in queries]
        self.search_log.add([self._log_entry(r, via, kwargs) for r in results])
        return results

    def flush_search_log(self) -> int:
        """Write the buffered search log now (it is otherwise written every second)."""
        return self.search_log.flush()

    @staticmethod
    def _log_entry(result: SearchResult, via: str, kwargs: dict) -> dict:
        return {
            "at": now_iso(),
            "q": result.query[:500],
            "category": kwargs.get("category") or "",
            "tag": kwargs.get("tag") or "",
            "hits": result.total,
            "took_ms": round(result.took_ms, 3),
            "via": via,
        }

    # -- writing ---------------------------------------------------------------

    def save(self, article: Article, *, by: str = "system") -> str:
        """Validate, store with a revision, and update the index incrementally."""
        articles_mod.validate(article)
        outcome = self.store.save(article, by=by)
        if outcome != "unchanged":
            self.indexes.update([document(article)])
        return outcome

    def delete(self, article_id: str, *, by: str = "system") -> None:
        self.store.delete(article_id, by=by)
        self.indexes.update([], delete_ids=[article_id])

    @property
    def runs(self) -> Runs:
        return Runs(self.store)

    @contextmanager
    def _run(self, kind: str, source: str, report: ImportReport | None = None):
        """Record a job; the index is marked dirty until it is brought up to date, so
        a job killed halfway is repaired (rebuilt) at the next ensure_index()."""
        runs = self.runs
        self._local.repair = self._index_left_behind()  # then this job rebuilds it
        run_id = runs.start(kind, source)
        self.store.set_setting(INDEX_DIRTY, "1")
        try:
            yield run_id
        except BaseException:
            runs.finish(run_id, "failed", report.to_dict() if report else None)
            raise
        self.store.set_setting(INDEX_DIRTY, "")
        runs.finish(run_id, "done", report.to_dict() if report else None)

    def import_dir(self, path: str | Path, *, by: str = "import") -> ImportReport:
        """Import Markdown articles; idempotent; a broken file never blocks the rest."""
        root = Path(path)
        if not root.exists():
            raise ValidationError("目录不存在", path=str(root))
        found, errors = articles_mod.load_dir(root)
        report = ImportReport(failed=len(errors), errors=[str(e) for e in errors])
        with self._run("import", str(root), report):
            self._save_and_index(found, report, by=by)
        return report

    def import_jsonl(
        self, path: str | Path, *, by: str = "import", on_progress=None
    ) -> ImportReport:
        """Import `{"id","title","body"?,"category","tags"?,"similar"?}` lines in batches.

        Each batch is one transaction; re-running after a crash resumes: committed
        records come back as unchanged and the index is repaired."""
        report = ImportReport()
        with self._run("import-jsonl", str(path), report):
            batch: list[Article] = []
            pending: list[Article] = []
            seen: set[str] = set()
            for art in self._read_jsonl(Path(path), report, seen):
                batch.append(art)
                if len(batch) >= JSONL_BATCH:
                    pending.extend(self._store_batch(batch, report, by))
                    batch = []
                    if on_progress:
                        on_progress(report)
            pending.extend(self._store_batch(batch, report, by))
            report.index = self._index_changes(pending)
        return report

    def _read_jsonl(self, path: Path, report: ImportReport, seen: set[str]) -> Iterator[Article]:
        shown = str(path)
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise ValidationError(f"无法读取：{exc.strerror}", path=shown) from None
        with fh:
            for lineno, raw in enumerate(fh, 1):
                if len(raw) > MAX_JSONL_LINE:
                    self._fail(report, shown, lineno, f"行超过 {MAX_JSONL_LINE // 1_000_000} MB")
                    continue
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
                    art = _article_from_record(rec)
                    articles_mod.validate(art)
                except UnicodeDecodeError:
                    self._fail(report, shown, lineno, "不是 UTF-8 编码")
                    continue
                except json.JSONDecodeError as exc:
                    self._fail(
                        report, shown, lineno, f"JSON 格式错误（第 {exc.colno} 列）：{exc.msg}"
                    )
                    continue
                except ValidationError as exc:
                    self._fail(report, shown, lineno, exc.message)
                    continue
                if art.id in seen:
                    self._fail(report, shown, lineno, f"id「{art.id}」在文件中重复")
                    continue
                seen.add(art.id)
                art.source = f"{shown}:{lineno}"
                yield art

    @staticmethod
    def _fail(report: ImportReport, path: str, line: int, reason: str) -> None:
        report.failed += 1
        if len(report.errors) < 1000:
            report.errors.append(f"{path}:{line}: {reason}")

    def _store_batch(self, batch: list[Article], report: ImportReport, by: str) -> list[Article]:
        outcomes = self.store.save_many(batch, by=by)
        changed = []
        for art, outcome in zip(batch, outcomes, strict=True):
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome != "unchanged":
                changed.append(art)
        return changed

    def _save_and_index(self, found: list[Article], report: ImportReport, by: str) -> None:
        pending: list[Article] = []
        for start in range(0, len(found), JSONL_BATCH):
            pending.extend(self._store_batch(found[start : start + JSONL_BATCH], report, by))
        report.index = self._index_changes(pending)

    def _index_changes(self, changed: list[Article]) -> dict:
        """Incremental for small changes; one fresh build when much changed."""
        if not self.indexes.exists() or getattr(self._local, "repair", False):
            self._local.repair = False
            return self.rebuild_index()
        if not changed:
            return {"mode": "none", "documents": 0}
        if len(changed) > max(500, REBUILD_FRACTION * self.store.count()):
            return self.rebuild_index()
        n = self.indexes.update(document(a) for a in changed)
        return {"mode": "incremental", "documents": n}

    # -- other document sources ------------------------------------------------

    def add_source(
        self,
        name: str,
        documents: Callable[[], Iterable[dict]],
        *,
        doctype: str,
        fingerprint: Callable[[], str],
    ) -> DocumentSource:
        """Index another kind of document beside the articles, in every rebuild and sync."""
        source = DocumentSource(name, doctype, documents, fingerprint)
        self.sources[name] = source
        return source

    def _source_stamp(self, source: DocumentSource) -> str:
        """Index generation + content fingerprint: a rebuild elsewhere invalidates it."""
        return f"{self.indexes.current_name() or ''}:{source.fingerprint()}"

    def sync_source(self, name: str, *, force: bool = False) -> dict:
        """Re-index one source incrementally when its content or the index changed."""
        source = self.sources[name]
        rebuilt = self.ensure_index()  # missing or old schema: the rebuild takes every source
        if rebuilt is not None:
            return rebuilt
        # Stamped with the generation seen *before* writing: a rebuild swapped in
        # meanwhile (by a process without this source) makes the next sync run again.
        stamp = self._source_stamp(source)
        if not force and self.store.get_setting(source.setting_key) == stamp:
            return {"mode": "none", "documents": 0}
        docs = list(source.documents())
        stale = self._indexed_ids(source.doctype) - {d["id"] for d in docs}
        n = self.indexes.update(docs, delete_ids=sorted(stale))
        self.store.set_setting(source.setting_key, stamp)
        return {"mode": "incremental", "documents": n}

    def _indexed_ids(self, doctype: str) -> set[str]:
        ix = self.indexes.open()
        try:
            with ix.searcher() as searcher:
                return {
                    searcher.stored_fields(n)["id"]
                    for n in searcher.document_numbers(doctype=doctype)
                }
        finally:
            ix.close()

    def _all_documents(self) -> Iterator[dict]:
        yield from (document(a) for a in self.store.iter_articles())
        for source in self.sources.values():
            yield from source.documents()

    def _index_left_behind(self) -> bool:
        """Dirty flag set and no job still running: an earlier job was killed between
        its database commits and its index update."""
        if not self.store.get_setting(INDEX_DIRTY):
            return False
        runs = self.runs
        runs.mark_interrupted()
        return not runs.any_running()

    def ensure_index(self) -> dict | None:
        """Rebuild when the index is missing, was built with an older schema, or was
        left behind by a job killed before it brought the index up to date."""
        stale = not self.indexes.is_current() or self._index_left_behind()
        if not stale:
            return None
        stats = self.rebuild_index()
        self.store.set_setting(INDEX_DIRTY, "")
        return stats

    def rebuild_index(self, *, on_progress=None) -> dict:
        """Full rebuild into a fresh generation; edits made meanwhile are re-applied."""
        started = now_iso()
        stats = self.indexes.rebuild(self._all_documents(), on_progress=on_progress)
        for source in self.sources.values():
            self.store.set_setting(source.setting_key, self._source_stamp(source))
        late = list(self.store.iter_articles(since=started))
        deleted = [
            r[0]
            for r in self.store.db.execute(
                "SELECT article_id FROM revisions WHERE action = 'delete' AND at >= ?", [started]
            )
        ]
        if late or deleted:
            self.indexes.update((document(a) for a in late), delete_ids=deleted)
        stats["mode"] = "rebuild"
        return stats

    def export_dir(self, dest: str | Path) -> int:
        """Write every article back as `<category>/<slug>.md`."""
        root = Path(dest)
        n = 0
        for art in self.store.iter_articles():
            target = root / articles_mod.article_filename(art)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".md.{os.getpid()}.tmp")
            tmp.write_text(articles_mod.dump_article(art), encoding="utf-8")
            os.replace(tmp, target)
            n += 1
        return n


def _article_from_record(rec) -> Article:
    if not isinstance(rec, dict):
        raise ValidationError("每行应为一个 JSON 对象")
    for key in ("id", "title"):
        if not isinstance(rec.get(key), str | int) or not str(rec.get(key)).strip():
            raise ValidationError(f"缺少字段 {key}")
    category = rec.get("category") or "product"
    if category not in CATEGORIES:
        # Imported FAQ sets use their own labels; keep them searchable as product articles.
        category = "product"

    def str_list(key: str) -> list[str]:
        value = rec.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(f"字段 {key} 应为字符串列表")
        return [v for v in value if v.strip()]

    body = rec.get("body") or ""
    if not isinstance(body, str):
        raise ValidationError("字段 body 应为字符串")
    return Article(
        id=str(rec["id"]).strip(),
        title=str(rec["title"]).strip(),
        category=category,
        body=body,
        tags=str_list("tags"),
        similar=str_list("similar"),
    )
