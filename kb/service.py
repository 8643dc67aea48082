"""The knowledge base as one object: store + index + search, for the web and CLI.

Index updates flow one way: every write of something the index holds appends to
the database's change sequence in the same transaction (kb/store.py), and an index
catches up by applying the changes numbered above its applied position
(kb/index.py APPLIED.json), reading the current rows.  The writing process applies
at once; every process serving an index also polls the sequence (IndexSync), so a
write whose index update was lost (a crash after the commit, another node) becomes
searchable within about a second, and at the latest at the next ensure_index().
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import weakref
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
REBUILD_FRACTION = 0.2  # above this share of changed articles, rebuild instead of updating
REBUILD_MIN = 500  # ... and above this many
CHANGES_PAGE = 5000  # change rows read per query while catching up
SYNC_INTERVAL = 1.0  # seconds between two looks at the change sequence (IndexSync)

log = logging.getLogger("kbcoach.index")


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
    they would change, so the index is refreshed only when needed (each generation
    records the fingerprint it holds in APPLIED.json).  Both are called lazily:
    registering a source costs nothing until the index is built or synced.
    """

    name: str
    doctype: str
    documents: Callable[[], Iterable[dict]]
    fingerprint: Callable[[], str]


def instance_paths(instance: str | Path) -> dict[str, Path]:
    root = Path(instance)
    return {"root": root, "db": root / "kbcoach.db", "index": root / "index"}


class KnowledgeBase:
    """Facade over one instance folder. Store connections are per thread."""

    def __init__(
        self,
        instance: str | Path,
        *,
        index_dir: str | Path | None = None,
        database_url: str | None = None,
    ):
        """`index_dir`: this node's own index (default `<instance>/index`); several
        nodes on one database each follow the change sequence into their own.
        `database_url`: a shared database (PostgreSQL) instead of the instance's
        SQLite file."""
        from storage import Database

        paths = instance_paths(instance)
        self.root = paths["root"]
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        make_private(self.root, PRIVATE_DIR)  # also for instances made before this rule
        self.db_path = paths["db"]
        self.database_url = database_url
        self.database = Database.for_instance(self.root, database_url)
        self.indexes = IndexManager(index_dir if index_dir is not None else paths["index"])
        self.engine = SearchEngine(self.indexes)
        self.search_log = SearchLog(self.database)
        self._local = threading.local()
        self.sources: dict[str, DocumentSource] = {}
        # (applied position, generation) this object last saw: the sync timer's check
        self._seen: tuple[int | None, str | None] = (None, None)
        self._sync: IndexSync | None = None

    @property
    def store(self) -> Store:
        st = getattr(self._local, "store", None)
        if st is None:
            st = self._local.store = Store(self.database)
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

    def save(
        self, article: Article, *, by: str = "system", expected_version: int | None = None
    ) -> str:
        """Validate, store with a revision and a change (one transaction), then bring
        the index up to date, so this process finds its own write at once.
        `expected_version`: the version the change was based on (Store.save)."""
        articles_mod.validate(article)
        outcome = self.store.save(article, by=by, expected_version=expected_version)
        if outcome != "unchanged":
            self._catch_up()
        return outcome

    def delete(self, article_id: str, *, by: str = "system") -> None:
        self.store.delete(article_id, by=by)
        self._catch_up()

    @contextmanager
    def deferred_index(self) -> Iterator[None]:
        """Writes made inside (by this thread) leave the index to the end, where it
        catches up once: a bulk change costs one index write, not one per article."""
        self._local.defer = getattr(self._local, "defer", 0) + 1
        try:
            yield
        finally:
            self._local.defer -= 1

    def _catch_up(self) -> None:
        """Apply pending changes after a write.  The write is committed and recorded:
        if the index cannot be written now, the sync timer or the next start applies it."""
        if getattr(self._local, "defer", 0):
            return
        try:
            self.apply_changes()
        except Exception:
            log.exception("index update failed; the change stays pending and is retried")

    @property
    def runs(self) -> Runs:
        return Runs(self.store)

    @contextmanager
    def _run(self, kind: str, source: str, report: ImportReport | None = None):
        """Record a job, so a killed one shows as interrupted.  Its committed batches
        carry their changes: the next catch-up indexes them."""
        runs = self.runs
        run_id = runs.start(kind, source)
        try:
            yield run_id
        except BaseException:
            runs.finish(run_id, "failed", report.to_dict() if report else None)
            raise
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
            seen: set[str] = set()
            for art in self._read_jsonl(Path(path), report, seen):
                batch.append(art)
                if len(batch) >= JSONL_BATCH:
                    self._store_batch(batch, report, by)
                    batch = []
                    if on_progress:
                        on_progress(report)
            self._store_batch(batch, report, by)
            report.index = self.apply_changes()
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

    def _store_batch(self, batch: list[Article], report: ImportReport, by: str) -> None:
        for outcome in self.store.save_many(batch, by=by):
            setattr(report, outcome, getattr(report, outcome) + 1)

    def _save_and_index(self, found: list[Article], report: ImportReport, by: str) -> None:
        for start in range(0, len(found), JSONL_BATCH):
            self._store_batch(found[start : start + JSONL_BATCH], report, by)
        report.index = self.apply_changes()

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

    def sync_source(self, name: str) -> dict:
        """Re-index one source when its content differs from what the index holds: a
        change in the sequence, applied like any other (by every node that has it)."""
        source = self.sources[name]
        rebuilt = self.ensure_index()  # missing or old schema: the rebuild takes every source
        if rebuilt is not None:
            return rebuilt
        if self.indexes.applied()["sources"].get(name) == source.fingerprint():
            return {"mode": "none", "documents": 0}
        self.store.record_change("source", name, "sync")
        return self.apply_changes()

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

    # -- following the change sequence -------------------------------------------

    def ensure_index(self) -> dict | None:
        """At start: rebuild when the index is missing or was built with an older
        schema, else apply the changes it has not seen (rebuilding when far behind).
        Returns the rebuild's stats, or None when no rebuild was needed."""
        if not self.indexes.is_current():
            return self.rebuild_index()
        stats = self.apply_changes()
        return stats if stats["mode"] == "rebuild" else None

    def apply_changes(self) -> dict:
        """Bring this node's index up to the change sequence: every change numbered
        above its applied position, in one incremental write; a fresh generation
        (the old one serving meanwhile) when the position is unknown or far behind."""
        if not self.indexes.exists():
            return self.rebuild_index()
        with self.indexes.lock():
            stats = self._apply_pending()
        return stats if stats is not None else self.rebuild_index()

    def poll_changes(self) -> dict | None:
        """The sync timer's step: one `SELECT max(seq)` (and a look at CURRENT, for a
        generation swapped in by another process); apply only when either moved."""
        seen = (self.store.last_change(), self.indexes.current_name())
        if seen == self._seen:
            return None
        return self.apply_changes()

    def _apply_pending(self) -> dict | None:
        """Apply with the index lock held; None when a rebuild is the way to catch up."""
        applied = self.indexes.applied()
        seq, last = applied["seq"], self.store.last_change()
        if (
            seq is None  # unknown position (no index, or one from older code)
            or applied["epoch"] != self.store.change_epoch()  # another or a restored database
            or seq > last
            or (seq < last and self.store.first_change() > seq + 1)  # needed changes pruned
        ):
            return None
        limit = max(REBUILD_MIN, int(REBUILD_FRACTION * self.store.count()))
        article_ids: dict[str, None] = {}  # in order, once each
        source_names: set[str] = set()
        position = seq
        while position < last and (page := self.store.changes_after(position, CHANGES_PAGE)):
            for _seq, kind, doc_id, _op in page:
                if kind == "article":
                    article_ids[doc_id] = None
                elif kind == "source":
                    source_names.add(doc_id)
            position = page[-1][0]
            if len(article_ids) > limit:
                return None
        generation = self.indexes.current_name()
        if self._seen[1] not in (None, generation):
            # swapped in by another process, maybe one without this process's sources
            source_names.update(self.sources)
        # rows read after the changes: at least as new as every change applied
        current = self.store.get_many(article_ids)
        docs = [document(current[i]) for i in article_ids if i in current]
        deletes = [i for i in article_ids if i not in current]
        sources = dict(applied["sources"])
        for name in sorted(source_names):
            source = self.sources.get(name)
            if source is None:  # a source this process does not serve
                continue
            fingerprint = source.fingerprint()
            if sources.get(name) == fingerprint:
                continue
            source_docs = list(source.documents())
            fresh = {d["id"] for d in source_docs}
            deletes.extend(sorted(self._indexed_ids(source.doctype) - fresh))
            docs.extend(source_docs)
            sources[name] = fingerprint
        n = 0
        if position != seq or sources != applied["sources"]:
            new_position = {"epoch": applied["epoch"], "seq": position, "sources": sources}
            if docs or deletes:
                n = self.indexes.update(docs, delete_ids=deletes, applied=new_position)
            else:
                self.indexes.set_applied(new_position)
        self._seen = (position, generation)
        return {"mode": "incremental" if n else "none", "documents": n}

    def rebuild_index(self, *, on_progress=None) -> dict:
        """Full rebuild into a fresh generation; changes made meanwhile are applied
        after the swap (the position is read before the documents)."""
        applied = {
            "epoch": self.store.change_epoch(),
            "seq": self.store.last_change(),
            "sources": {name: s.fingerprint() for name, s in self.sources.items()},
        }
        stats = self.indexes.rebuild(
            self._all_documents(), on_progress=on_progress, applied=applied
        )
        with self.indexes.lock():
            self._apply_pending()
        stats["mode"] = "rebuild"
        return stats

    def start_sync(self, interval: float = SYNC_INTERVAL) -> IndexSync:
        """Poll the change sequence in a daemon thread (idempotent)."""
        if self._sync is None or not self._sync.is_alive():
            self._sync = IndexSync(self, interval)
            self._sync.start()
        return self._sync

    def stop_sync(self) -> None:
        if self._sync is not None:
            self._sync.stop()
            self._sync = None


class IndexSync(threading.Thread):
    """Applies the changes other processes (or a crashed one) recorded, about once a
    second.  Holds its knowledge base weakly: it ends when the knowledge base is
    gone, when stop() is called, or at interpreter exit."""

    def __init__(self, kb: KnowledgeBase, interval: float = SYNC_INTERVAL):
        super().__init__(name="kbcoach-index-sync", daemon=True)
        self._kb = weakref.ref(kb)
        self.interval = interval
        self._stopping = threading.Event()
        atexit.register(self.stop)

    def run(self) -> None:
        failing = False  # log a failure once, not every second while the database is down
        try:
            while not self._stopping.wait(self.interval):
                kb = self._kb()
                if kb is None:
                    return
                try:
                    kb.poll_changes()
                    if failing:
                        log.warning("index sync works again")
                    failing = False
                except Exception:
                    if not failing:
                        log.exception("index sync failed; retrying every %ss", self.interval)
                    failing = True
                del kb
        finally:
            kb = self._kb()
            if kb is not None:
                kb.close()  # this thread's database connection

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=30)


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
