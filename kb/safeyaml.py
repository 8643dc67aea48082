"""YAML that people supply (team rule packs, script overlays, article front matter).

PyYAML's safe loader builds only plain types, but it still follows anchors and
aliases: a few hundred bytes of nested aliases ("billion laughs") stand for
billions of nodes, and everything that walks the result (comparing, dumping)
takes forever.  Deep nesting overflows the recursive composer.  So every YAML a
user can supply is first scanned as an event stream (libyaml, linear in the text)
and refused, with the line, when it uses an anchor or alias, nests deeper than
`MAX_DEPTH` or holds more than `MAX_NODES` nodes.  Where aliases must keep working
(`aliases=True`: the default rule pack, rule files given on the command line, team
versions stored before the editor refused them) each alias counts the nodes it
stands for, so the bound holds for the expanded document too and a bomb fails fast.
"""

from __future__ import annotations

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present
MAX_DEPTH = 40
MAX_NODES = 100_000

_ANCHOR = "不支持 YAML 锚点/别名（&/*）"


class YamlRefused(yaml.MarkedYAMLError):
    """A document refused before loading; `problem` is Chinese, `line` 1-based."""

    def __init__(self, problem: str, mark=None, source: str = ""):
        super().__init__(problem=problem, problem_mark=mark)
        self.line = mark.line + 1 if mark is not None else None
        self.source = source

    def __str__(self) -> str:
        where = f"第 {self.line} 行：" if self.line else ""
        return f"{self.source + ' ' if self.source else ''}{where}{self.problem}"


def check(text: str, *, aliases: bool = False, source: str = "", loader=LOADER) -> None:
    """Raise YamlRefused (or yaml.YAMLError for bad syntax) unless `text` is safe to load.

    `loader` parses the events (libyaml by default; the pure-Python one words and
    places syntax errors a little differently)."""
    depth = 0
    nodes = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    open_: list[tuple[str | None, int]] = []  # (anchor, node count at its start)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            if not aliases:
                raise YamlRefused(_ANCHOR, event.start_mark, source)
            nodes += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
            if event.anchor is not None and not aliases:
                raise YamlRefused(_ANCHOR, event.start_mark, source)
            nodes += 1
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlRefused(f"嵌套过深（最多 {MAX_DEPTH} 层）", event.start_mark, source)
                open_.append((event.anchor, nodes - 1))
            elif event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_.pop()
            if anchor is not None:
                sizes[anchor] = nodes - start
        else:
            continue
        if nodes > MAX_NODES:
            raise YamlRefused(
                f"内容过多（最多 {MAX_NODES} 个值，别名按展开后计）", event.start_mark, source
            )


def load(text: str, *, aliases: bool = False, source: str = "", loader=LOADER):
    """The document's data, after `check`; a value PyYAML cannot build is a YamlRefused."""
    check(text, aliases=aliases, source=source, loader=loader)
    try:
        return yaml.load(text, Loader=loader)
    except ValueError as exc:  # e.g. an integer too long to convert
        raise YamlRefused(f"无法解析的值：{exc}", None, source) from None


def compose(
    text: str, *, aliases: bool = False, source: str = "", loader=LOADER
) -> yaml.Node | None:
    """The document's node tree (lines of keys), after `check`."""
    check(text, aliases=aliases, source=source, loader=loader)
    return yaml.compose(text, Loader=loader)


def construct(loader: yaml.BaseLoader, node: yaml.Node):
    """Build data from a node composed by `loader` (ValueError becomes YamlRefused)."""
    try:
        return loader.construct_document(node)
    except ValueError as exc:
        raise YamlRefused(f"无法解析的值：{exc}", node.start_mark) from None
