"""The team's rule pack: versions of one overlay YAML kept in the instance.

Supervisors edit the overlay (disable a rule, change a weight, add a team rule) and
every saved version is kept: in the database (who, when, the text) and as a file
under ``<instance>/rules/`` that `load_rules` reads like any other overlay.  A
version is only saved when the whole pack (default + overlay) loads and its
examples pass, so a broken edit never reaches the checker.  Audit runs record the
version they were checked with.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import yaml

from kb import safeyaml
from kb.diff import diff_ops, ops_html
from kb.errors import StaleVersion
from kb.store import Store, now_iso
from storage import rules as repo

from .rules import TOP_LEVEL, RuleError, RulePack, default_pack_path, load_rules

MAX_YAML_BYTES = 256 * 1024
TEAM_KEYS = frozenset(TOP_LEVEL) - {"definitions"}  # no anchors, so nothing to define

STARTER = """\
# 团队规则覆盖层：在默认规则包之上修改或新增规则。保存前会整体校验。
# 规则 id 见页面下方的列表。去掉行首的 # 即可生效。
# 例：停用「首次响应慢」规则
# disable: [slow-greeting]
# 例：把「模糊用语」每次扣分改为 3 分，本会话最多扣 9 分
# rules:
#   - id: vague-hedge
#     weight: 3
#     cap: 9
"""


def _digest(text: str) -> str | None:
    """SHA-256 of the overlay's data as canonical JSON; None when it cannot be read
    safely (bad syntax, anchors, too large: `save` reports why)."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        return None
    try:
        data = safeyaml.load(text) or {}
        canon = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    except (yaml.YAMLError, TypeError):
        return None
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


_EMPTY = _digest("")


class RuleBook:
    """The team's rule-pack versions: rows in the database, files as a cache.

    Nothing is kept in memory: the current version is the newest row, looked up on
    each call, so a version saved by any process or node is what every other one loads
    next (web/coach.py looks it up at most once a second)."""

    def __init__(self, store: Store, instance: str | Path):
        self.store = store
        self.database = store.database
        self.folder = Path(instance) / "rules"

    def current(self) -> dict | None:
        """The newest saved version, or None (the default pack alone)."""
        return repo.current(self.database)

    def version(self) -> int:
        return repo.version(self.database)

    def history(self, limit: int = 50, offset: int = 0) -> list[dict]:
        return repo.history(self.database, limit, offset)

    def version_count(self) -> int:
        return repo.count(self.database)

    def get(self, version: int) -> dict | None:
        return repo.get(self.database, version)

    def path_for(self, version: int) -> Path | None:
        """The overlay file of a version, written from the database when missing or
        different (the database is the truth: another node, or an instance folder
        moved to another database, may have left other text under the same number)."""
        if not version:
            return None
        row = self.get(version)
        if row is None:
            return None
        path = self.folder / f"team-v{version}.yaml"
        text = row["yaml"] or ""
        try:
            same = path.read_text(encoding="utf-8") == text
        except (FileNotFoundError, UnicodeDecodeError):
            same = False
        if not same:
            self._write(path, text)
        return path

    def pack(self, version: int | None = None) -> RulePack:
        """The rule pack of a version (default: the current one)."""
        version = self.version() if version is None else version
        path = self.path_for(version)
        return load_rules([path] if path else [])

    def validate(self, text: str) -> RulePack:
        """Load default + this overlay; RuleError lists every problem (file and line).

        Stricter than `load_rules` on an overlay file: no YAML anchors or aliases at
        all (people edit this in a browser; a few bytes of nested aliases stand for
        billions of values) and so no `definitions`, the default pack's anchor holder."""
        if len(text.encode("utf-8")) > MAX_YAML_BYTES:
            raise RuleError([f"规则文件过大（最多 {MAX_YAML_BYTES // 1024} KB）"])
        try:
            data = safeyaml.load(text)
        except safeyaml.YamlRefused as exc:
            raise RuleError([f"团队规则: {exc}"]) from None
        except yaml.YAMLError:
            data = None  # load_rules below names the line in its words
        if isinstance(data, dict) and set(data) - TEAM_KEYS:
            names = ", ".join(sorted(map(str, set(data) - TEAM_KEYS)))
            hint = (
                "；definitions 只用于默认规则包的锚点，团队规则请把词表直接写在规则里"
                if "definitions" in data
                else ""
            )
            usable = " / ".join(k for k in TOP_LEVEL if k in TEAM_KEYS)
            raise RuleError([f"团队规则: 未知的键 {names}（可用：{usable}）{hint}"])
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="draft-", suffix=".yaml", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return load_rules([tmp])
        except RuleError as exc:  # name the overlay as the editor knows it
            # people see which pack, never the server's file paths
            base = str(default_pack_path())
            raise RuleError(
                [p.replace(tmp, "团队规则").replace(base, "默认规则包") for p in exc.problems]
            ) from None
        finally:
            os.unlink(tmp)

    def unchanged(self, text: str) -> bool:
        """True when `text` means what the current version means (comments and layout
        aside; no version at all means an empty overlay): no version to add.

        Compares digests of the normalised documents (canonical JSON), never the
        loaded structures: a stored version with aliases (saved before they were
        refused) is not expanded but counts as different."""
        current = self.current()
        new = _digest(text)
        return new is not None and new == (_digest(current["yaml"]) if current else _EMPTY)

    def save(self, text: str, *, by: str, note: str = "", base_version: int | None = None) -> int:
        """Validate and store a new version; returns its number.

        `base_version`: the version the text was edited from (0: the default pack
        alone).  When another version was saved since, nothing is stored and
        StaleVersion carries the current text and the diff (current → this text)."""
        self.validate(text)
        version = repo.add(self.database, text, by, now_iso(), note[:200], expected=base_version)
        if version is None:
            raise self._stale(text, base_version or 0)
        self._write(self.folder / f"team-v{version}.yaml", text)
        return version

    def text_of(self, version: int) -> str:
        """The overlay text of a version (0: the default pack alone, an empty overlay)."""
        if version == 0:
            return ""
        row = self.get(version)
        if row is None:
            from kb.errors import NotFound

            raise NotFound(f"团队规则没有 v{version}")
        return row["yaml"] or ""

    def diff(self, old: int, new: int) -> list[dict]:
        """The change from version `old` to version `new` (0: the default pack alone),
        compared by characters and words inside changed lines (kb/diff.py)."""
        ops = diff_ops(self.text_of(old), self.text_of(new))
        if all(kind == "=" for kind, _ in ops):
            return []
        return [{"field": "yaml", "label": "规则", "ops": [list(o) for o in ops],
                 "html": ops_html(ops)}]  # fmt: skip

    def rollback(self, version: int, *, by: str, base_version: int) -> int | None:
        """A new version equal to `version` (0: back to the default pack alone), checked
        and stored like any save (StaleVersion when `base_version` is no longer the
        current one, RuleError when it no longer loads); None when the current
        version already means the same."""
        text = self.text_of(version)
        if self.version() == base_version and self.unchanged(text):
            return None
        return self.save(text, by=by, note=f"回滚到 v{version}", base_version=base_version)

    def _stale(self, text: str, based_on: int) -> StaleVersion:
        current = self.current()
        now = current["id"] if current else 0
        who = f"{current['by']} 于 {current['at'][:19].replace('T', ' ')} " if current else ""
        ops = diff_ops(current["yaml"] if current else "", text)
        return StaleVersion(
            f"团队规则已被 {who}保存为 v{now}，你的修改基于 v{based_on}，未保存："
            f"请查看差异，在当前版本上重新应用你的修改",
            current_version=now,
            details={
                "based_on": based_on,
                "current": current,
                "diff": [{"field": "yaml", "label": "规则", "ops": [list(o) for o in ops],
                          "html": ops_html(ops)}],
            },
        )  # fmt: skip

    @staticmethod
    def _write(path: Path, text: str) -> None:
        """Replace the file at once (a unique temporary name: processes may race)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem + "-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
