"""The whoosh index: schema declared once, jieba analysis, atomic rebuilds.

Layout of the index root (``<instance>/index``)::

    CURRENT        name of the generation folder that serves (replaced atomically)
    LOCK           flock()ed while a process applies changes or swaps a generation
    gen-<stamp>/   a complete whoosh index, with APPLIED.json beside its files
    build-<stamp>/ a rebuild in progress (ignored by readers; removed when stale)

A rebuild writes a fresh ``build-*`` folder, renames it to ``gen-*`` and only then
swaps CURRENT, so a crash at any point leaves the old generation serving.
Single-article changes are written incrementally into the current generation.

``APPLIED.json`` says how far this generation follows the database's change
sequence (kb/store.py): ``{"epoch": "<database's>", "seq": 155, "sources":
{"scripts": "<fingerprint>"}}``; a different epoch means another (or a restored)
database, whose numbers say nothing about this index.
It is replaced atomically after each index commit, so it never claims more than
the index holds; a generation without it (older code) is rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from whoosh import index as windex
from whoosh.analysis import Token, Tokenizer
from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema

from . import pinyin, textproc
from .models import Article

SEARCH_FIELDS = ("title", "similar", "body")


class _PieceTokenizer(Tokenizer):
    """A whoosh tokenizer over (text, start, end, position) pieces of the value; the
    subclasses say what a piece is."""

    def __eq__(self, other):
        return other.__class__ is self.__class__

    def pieces(self, value: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        tok = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for text, start, end, pos in self.pieces(value):
            tok.text = text
            tok.boost = 1.0
            tok.stopped = False
            if keeporiginal:
                tok.original = text
            if positions:
                tok.pos = start_pos + pos
            if chars:
                tok.startchar = start_char + start
                tok.endchar = start_char + end
            yield tok


class JiebaTokenizer(_PieceTokenizer):
    """Normalised words of the shared pipeline, stop words dropped, exact offsets;
    positions count every word, so gaps where stop words were stay visible.  No HMM
    guesses, as for the query (textproc.terms with hmm=False)."""

    def pieces(self, value: str):
        stop = textproc.stopwords()
        for pos, word in enumerate(textproc.tokenize(value, hmm=False)):
            if textproc.is_word(word.text) and word.text not in stop:
                yield word.text, word.start, word.end, pos


class BigramTokenizer(_PieceTokenizer):
    """Overlapping character bigrams of the normalised text, so a query segmented
    differently from the document still shares terms with it."""

    def pieces(self, value: str):
        for pos, (gram, start) in enumerate(textproc.char_bigrams(value)):
            yield gram, start, start + len(gram), pos


class CharTokenizer(_PieceTokenizer):
    """Single Chinese characters (and latin/digit runs) of the normalised text: the
    partial credit of 提高 against 提升, and what the coverage of a question by the
    query is counted in (kb/search.py)."""

    def pieces(self, value: str):
        for pos, (char, start) in enumerate(textproc.char_unigrams(value)):
            yield char, start, start + len(char), pos


def analyzer() -> JiebaTokenizer:
    return JiebaTokenizer()


# Bump when tokenisation or field contents change without a schema change: indexes
# built by other code are then stale and rebuilt (is_current).
ANALYSIS_VERSION = 3
# Segments as separate files, not one compound file: whoosh opens a compound file's
# parts as in-memory copies (BytesIO over the mmap), so every searcher refresh after
# an edit copied the whole index (28 MB at 7k articles).  Separate files open lazily.
COMPOUND = False
ANALYSIS_FILE = "ANALYSIS"
APPLIED_FILE = "APPLIED.json"
LOCK_FILE = "LOCK"
DATA_DIR = Path(__file__).resolve().parent / "data"


@lru_cache(maxsize=1)
def analysis_stamp() -> str:
    """ANALYSIS_VERSION plus a digest of the dictionaries segmentation depends on."""
    digest = hashlib.sha256()
    for name in ("userdict.txt", "synonyms.txt", "stopwords.txt"):
        try:
            digest.update((DATA_DIR / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    return f"{ANALYSIS_VERSION}-{digest.hexdigest()[:16]}"


def make_schema() -> Schema:
    """The one schema of the knowledge-base index."""
    ana = analyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        doctype=ID(stored=True),
        title=TEXT(analyzer=ana, stored=True, phrase=True),
        similar=TEXT(analyzer=ana, stored=True, phrase=False),
        body=TEXT(analyzer=ana, stored=True, phrase=False),
        grams=TEXT(analyzer=BigramTokenizer(), phrase=False),
        chars=TEXT(analyzer=CharTokenizer(), phrase=False),
        py=KEYWORD(lowercase=True, scorable=True),
        category=ID(stored=True),
        tags=KEYWORD(stored=True, commas=True, lowercase=True, scorable=False),
        status=ID(stored=True),
        review_by=ID(stored=True),
        updated=STORED,
    )


def document(article: Article, doctype: str = "article") -> dict:
    """The whoosh document of an article."""
    return {
        "id": article.id,
        "doctype": doctype,
        "title": article.title,
        "similar": "\n".join(article.similar),
        "body": article.body,
        "grams": "\n".join([article.title, *article.similar]),
        "chars": "\n".join([article.title, *article.similar]),
        "py": " ".join(pinyin.index_keys([article.title, *article.similar[:10], *article.tags])),
        "category": article.category,
        "tags": ",".join(t.strip().lower() for t in article.tags if t.strip()),
        "status": article.status,
        "review_by": article.review_by,
        "updated": time.time(),
    }


class IndexManager:
    """Owns the index root: which generation serves, rebuilds, incremental writes."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = threading.RLock()
        self._lock_depth = 0
        self._lock_fd: int | None = None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across threads and processes on this index root; re-entrant in
        the holding thread.  Held while changes are applied and while a generation
        is swapped in, so an applied position always describes the index it is in."""
        with self._lock:
            if self._lock_depth == 0:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._lock_fd = fd
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    os.close(self._lock_fd)
                    self._lock_fd = None

    # -- how far the serving generation follows the change sequence ----------

    def applied(self) -> dict:
        """The serving generation's APPLIED.json: {"epoch", "seq", "sources"}; seq
        None when unknown (no index, or one written by older code)."""
        path = self.current_dir()
        try:
            data = json.loads((path / APPLIED_FILE).read_text(encoding="utf-8"))
            seq = int(data["seq"])
            epoch = str(data["epoch"])
            sources = {str(k): str(v) for k, v in dict(data.get("sources") or {}).items()}
        except (TypeError, OSError, ValueError, KeyError):
            return {"epoch": "", "seq": None, "sources": {}}
        return {"epoch": epoch, "seq": seq, "sources": sources}

    def set_applied(self, applied: dict) -> None:
        """Move the serving generation's position without writing documents (changes
        that did not touch this index).  Call with lock() held."""
        path = self.current_dir()
        if path is not None:
            self._write_applied(path, applied)

    @staticmethod
    def _write_applied(folder: Path, applied: dict) -> None:
        tmp = folder / f"{APPLIED_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(applied, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        os.replace(tmp, folder / APPLIED_FILE)

    # -- which generation serves ---------------------------------------------

    def current_name(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        return name if name and (self.root / name).is_dir() else None

    def current_dir(self) -> Path | None:
        name = self.current_name()
        return self.root / name if name else None

    def exists(self) -> bool:
        path = self.current_dir()
        return path is not None and windex.exists_in(str(path))

    def is_current(self) -> bool:
        """True when a serving index exists, has this code's schema fields and was
        analysed the way this code analyses (ANALYSIS_VERSION and the dictionaries)."""
        path = self.current_dir()
        if path is None or not windex.exists_in(str(path)):
            return False
        try:
            if (path / ANALYSIS_FILE).read_text(encoding="ascii").strip() != analysis_stamp():
                return False
        except OSError:
            return False
        ix = windex.open_dir(str(path))
        try:
            return set(ix.schema.names()) == set(make_schema().names())
        finally:
            ix.close()

    def open(self):
        """The serving whoosh index (creating an empty one the first time)."""
        path = self.current_dir()
        if path is None or not windex.exists_in(str(path)):
            self.rebuild([])
            path = self.current_dir()
        return windex.open_dir(str(path))

    def _swap_current(self, name: str) -> None:
        tmp = self.root / f"CURRENT.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / "CURRENT")
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- writes ---------------------------------------------------------------

    def rebuild(
        self, documents: Iterable[dict], *, on_progress=None, applied: dict | None = None
    ) -> dict:
        """Build a complete index in a fresh folder, then swap it in atomically.

        `applied` ({"seq", "sources"}) is what the documents include: the position
        in the change sequence read before they were read."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        build = self.root / f"build-{stamp}"
        build.mkdir()
        started = time.perf_counter()
        ix = windex.create_in(str(build), make_schema())
        writer = ix.writer(limitmb=256, compound=COMPOUND)
        count = 0
        try:
            for doc in documents:
                writer.add_document(**doc)
                count += 1
                if on_progress and count % 1000 == 0:
                    on_progress(count)
            writer.commit(optimize=True)
        except BaseException:
            writer.cancel()
            raise
        ix.close()
        (build / ANALYSIS_FILE).write_text(analysis_stamp() + "\n", encoding="ascii")
        if applied is not None:
            self._write_applied(build, applied)
        final = self.root / f"gen-{stamp}"
        os.rename(build, final)
        with self.lock():  # not while changes are being written into the old generation
            self._swap_current(final.name)
            self.cleanup(keep={final.name})
        return {
            "documents": count,
            "seconds": time.perf_counter() - started,
            "bytes": dir_size(final),
            "path": str(final),
        }

    def cleanup(self, keep: set[str], *, stale_after: float = 3600) -> None:
        """Remove old generations and abandoned builds (not ones still running)."""
        now = time.time()
        for child in self.root.iterdir():
            if not child.is_dir() or child.name in keep:
                continue
            if child.name.startswith("gen-") or (
                child.name.startswith("build-") and now - child.stat().st_mtime > stale_after
            ):
                # Old generations may still be open in other processes: on POSIX
                # their open files stay readable after unlink.
                shutil.rmtree(child, ignore_errors=True)

    def update(
        self,
        documents: Iterable[dict],
        delete_ids: Iterable[str] = (),
        *,
        applied: dict | None = None,
    ) -> int:
        """Incremental add/replace/delete in the serving generation, one writer; then
        `applied` becomes that generation's position in the change sequence."""
        ix = self.open()
        writer = ix.writer(timeout=30.0, compound=COMPOUND)
        n = 0
        try:
            for doc in documents:
                writer.update_document(**doc)
                n += 1
            for doc_id in delete_ids:
                writer.delete_by_term("id", doc_id)
                n += 1
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        finally:
            ix.close()
        if applied is not None:
            self._write_applied(Path(ix.storage.folder), applied)
        return n


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
