"""The scripts library: shared scripts plus overlays, with lookups by id, shortcut and rule."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from kb.textproc import normalize, tokenize
from scripts_lib.loader import FileResult, read_file
from scripts_lib.models import Scenario, Script, ScriptDataError, ScriptNotFound
from scripts_lib.render import Rendered, render

DATA_DIR = Path(__file__).parent / "data"
BUILTIN = "builtin"


def _norm(text: str) -> str:
    """Normalised form used for every comparison (width, case, traditional)."""
    return normalize(text.strip()).lower()


def _where(script: Script) -> str:
    return f"{script.source}:{script.line}" if script.line else script.source


class Library:
    """Scripts grouped by scenario; built by `load_library`, read-only afterwards."""

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}
        self._scenarios: dict[str, Scenario] = {}
        self._scenario_seq: dict[str, int] = {}
        self._shortcuts: dict[str, str] = {}
        self._ordered: list[Script] | None = None
        self._entry_tokens: dict[str, list[str]] = {}
        self.errors: list[ScriptDataError] = []

    # building -------------------------------------------------------------

    def add_file(self, result: FileResult) -> None:
        """Merge one read data file: its scenario, its scripts and its errors."""
        self.errors.extend(result.errors)
        if result.scenario is not None and result.scenario.name not in self._scenarios:
            self._scenarios[result.scenario.name] = result.scenario
            self._scenario_seq[result.scenario.name] = len(self._scenario_seq)
        for script in result.scripts:
            self.add(script)

    def add(self, script: Script) -> bool:
        """Add a script; a later layer overrides the same id, a clash is an error."""
        old = self._scripts.get(script.id)
        if old is not None and old.origin == script.origin:
            self._error(script, f"话术 {script.id}：id 重复，已在 {_where(old)} 定义")
            return False
        owner = self._shortcuts.get(script.shortcut)
        if owner is not None and owner != script.id:
            other = self._scripts[owner]
            self._error(
                script,
                f"话术 {script.id}：快捷码 {script.shortcut} 重复，"
                f"已被话术 {owner}（{_where(other)}）使用",
            )
            return False
        if old is not None:
            self._shortcuts.pop(old.shortcut, None)
        self._scripts[script.id] = script
        self._shortcuts[script.shortcut] = script.id
        self._ordered = None
        return True

    def _error(self, script: Script, message: str) -> None:
        self.errors.append(
            ScriptDataError(message, path=script.source, line=script.line, script_id=script.id)
        )

    # reading --------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when every file and script loaded without a problem."""
        return not self.errors

    def __len__(self) -> int:
        return len(self._scripts)

    def __contains__(self, script_id: object) -> bool:
        return script_id in self._scripts

    def __iter__(self) -> Iterator[Script]:
        return iter(self.all())

    def all(self) -> list[Script]:
        """Every script, by scenario order and then file order."""
        if self._ordered is None:
            rank = {s.name: i for i, s in enumerate(self.scenarios())}
            self._ordered = sorted(self._scripts.values(), key=lambda s: rank.get(s.scenario, 0))
        return list(self._ordered)

    def get(self, script_id: str) -> Script:
        """The script with this id; raises ScriptNotFound (404) when there is none."""
        try:
            return self._scripts[script_id]
        except KeyError:
            raise ScriptNotFound(f"话术不存在：{script_id}") from None

    def scenarios(self) -> list[Scenario]:
        """Scenarios ordered by their `order` field, then by load order."""
        return sorted(self._scenarios.values(), key=lambda s: (s.order, self._scenario_seq[s.name]))

    def scenario(self, name: str) -> Scenario:
        """One scenario by name; raises ScriptNotFound when unknown."""
        try:
            return self._scenarios[name]
        except KeyError:
            raise ScriptNotFound(f"话术场景不存在：{name}") from None

    def by_scenario(self, name: str) -> list[Script]:
        """Scripts of one scenario in file order (empty for an unknown scenario)."""
        return [s for s in self.all() if s.scenario == name]

    def grouped(self) -> list[tuple[Scenario, list[Script]]]:
        """(scenario, scripts) pairs in display order, for a panel grouped by scenario."""
        return [(sc, self.by_scenario(sc.name)) for sc in self.scenarios()]

    def by_shortcut(self, code: str) -> Script | None:
        """The script whose shortcut is `code` (`/dd`, `dd`, `／ＤＤ` all work), or None."""
        key = _norm(code or "")
        if not key:
            return None
        if not key.startswith("/"):
            key = "/" + key
        script_id = self._shortcuts.get(key)
        return self._scripts[script_id] if script_id else None

    def render(
        self,
        script_id: str,
        values: Mapping[str, object] | None = None,
    ) -> Rendered:
        """Render one script by id; unknown id raises ScriptNotFound."""
        return render(self.get(script_id), values)

    # rule link ------------------------------------------------------------

    def replacing(self, key: str) -> Script | None:
        """The best standard script for a coach category or a flagged phrase, or None."""
        found = self.replacing_all(key)
        return found[0] if found else None

    def replacing_all(self, key: str) -> list[Script]:
        """Scripts that replace `key`, best first.

        An exact `replaces` entry wins; an entry listed earlier in a script's `replaces`
        ranks higher, then library order. Failing an exact hit, a flagged sentence
        (大概三天左右) matches the longest phrase entry found among its jieba tokens.
        """
        norm_key = _norm(key or "")
        if not norm_key:
            return []
        exact: list[tuple[int, int, Script]] = []
        for rank, script in enumerate(self.all()):
            entries = [_norm(e) for e in script.replaces]
            if norm_key in entries:
                exact.append((entries.index(norm_key), rank, script))
        if exact:
            return [s for _, _, s in sorted(exact, key=lambda t: t[:2])]
        key_tokens = [t.text for t in tokenize(norm_key)]
        partial: list[tuple[int, int, int, Script]] = []
        for rank, script in enumerate(self.all()):
            for pos, entry in enumerate(script.replaces):
                tokens = self._tokens_of(entry)
                if tokens and not entry.isascii() and _contains(key_tokens, tokens):
                    partial.append((-len(entry), pos, rank, script))
                    break
        return [s for *_, s in sorted(partial, key=lambda t: t[:3])]

    def _tokens_of(self, entry: str) -> list[str]:
        if entry not in self._entry_tokens:
            self._entry_tokens[entry] = [t.text for t in tokenize(_norm(entry))]
        return self._entry_tokens[entry]

    # search ---------------------------------------------------------------

    def search(
        self, q: str = "", *, scenario: str | None = None, channel: str | None = None
    ) -> list[Script]:
        """Filter-as-you-type: `/d` is a shortcut prefix, other words are substrings.

        Every word of `q` must occur in the title, tags, text, id or shortcut; hits in
        the title rank above tags and shortcut, which rank above the text.
        """
        pool = [
            s
            for s in self.all()
            if (scenario is None or s.scenario == scenario)
            and (channel is None or channel in s.channels)
        ]
        query = _norm(q or "")
        if not query:
            return pool
        if query.startswith("/") and " " not in query:
            hits = [s for s in pool if s.shortcut.startswith(query)]
            return sorted(hits, key=lambda s: s.shortcut != query)
        words = query.split()
        scored: list[tuple[int, int, Script]] = []
        for rank, script in enumerate(pool):
            score = _score(script, words)
            if score:
                scored.append((-score, rank, script))
        return [s for *_, s in sorted(scored, key=lambda t: t[:2])]


def _contains(haystack: list[str], needle: list[str]) -> bool:
    """True when `needle` occurs as a contiguous run of `haystack` tokens."""
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def _score(script: Script, words: list[str]) -> int:
    """Sum of field weights over the query words; 0 when any word is absent."""
    title = _norm(script.title)
    tags = [_norm(t) for t in script.tags]
    text = _norm(script.text)
    code = script.shortcut[1:]
    total = 0
    for word in words:
        word = word.lstrip("/")
        if not word:
            continue
        if word in title:
            total += 4
        elif any(word in t for t in tags):
            total += 3
        elif word.isascii() and (code.startswith(word) or word in script.id):
            total += 2
        elif word in text:
            total += 1
        else:
            return 0
    return total


def load_library(
    dirs: Iterable[str | Path] | None = None,
    *,
    builtin: bool = True,
    strict: bool = False,
) -> Library:
    """Load the shared scripts, then each overlay dir (a team's, an agent's) in turn.

    A script in a later dir with an existing id overrides it; a new id is added beside
    the shared ones. Problems are collected in `library.errors` and the rest still
    loads; with `strict=True` the first problem is raised instead.
    """
    library = Library()
    layers: list[tuple[Path, str]] = [(DATA_DIR, BUILTIN)] if builtin else []
    layers += [(Path(d), str(d)) for d in dirs or ()]
    for path, origin in layers:
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        else:
            library.errors.append(ScriptDataError("话术目录不存在", path=str(path)))
            continue
        for file in files:
            library.add_file(read_file(file, origin))
    if strict and library.errors:
        first = library.errors[0]
        more = len(library.errors) - 1
        suffix = f"（另有 {more} 处错误）" if more else ""
        raise ScriptDataError(
            first.message + suffix, path=first.path, line=first.line, script_id=first.script_id
        )
    return library
