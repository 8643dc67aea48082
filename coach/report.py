"""The batch report and `run_check`, the pure function behind `kbcoach check`.

CLI contract (the click command in cli.py is a thin wrapper)::

    run_check(paths: list[str], fmt: str = "text", rules_paths: list[str] = (),
              min_level: str = "info", output: str | None = None,
              stdin=None, progress=None) -> int

- `paths`: files, folders (every .jsonl/.json/.csv/.txt/.log inside) or "-" (stdin)
- `fmt`: text | json | csv | xlsx (xlsx needs `output`)
- `rules_paths`: team overlay YAML files applied over the default pack, in order
- `min_level`: info | warning | error | fatal; lower findings are left out of the
  output and the exit code (the score always counts every finding)
- `output`: file to write, or None for stdout
- `stdin`: binary (or text) stream read for "-" (default sys.stdin.buffer)
- `progress`: optional callable `progress(done, total)` after each conversation
- `load`: options for reading the input (`load_options` builds them): who the
  agents are (`agent_names`, `agent_pattern`), `mapping`, and `fmt` to force an
  input format

A conversation with no agent turn is not checked: it is listed under "errors"
with the senders found (exit 1), never scored 100 nor counted in an agent's mean.

Exit codes: 0 clean, 1 findings (or input records that could not be loaded; they
are listed under "errors" and the rest of the batch is still checked), 2 usage
error (unknown format or level, missing path, bad rule file), 4 internal error.
Errors go to stderr as one Chinese line; no stack trace reaches the user.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from kb.errors import KbError

from .checker import Checker, ConversationReport
from .rules import LEVELS, RuleError, load_rules
from .scoring import aggregate_agents
from .transcripts import ImportIssue, load_path

FORMATS = ("text", "json", "csv", "xlsx")
EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 4


class UsageError(KbError, ValueError):
    """Bad arguments: the CLI exits with code 2."""


def visible(findings: list[dict], min_level: str) -> list[dict]:
    """Findings at or above `min_level`."""
    floor = LEVELS.index(min_level)
    return [f for f in findings if LEVELS.index(f["level"]) >= floor]


def build_report(
    reports: list[ConversationReport],
    errors: list[ImportIssue] | list[dict] = (),
    min_level: str = "info",
    rules_sources: list[str] | None = None,
) -> dict:
    """The JSON report: conversations, agents, errors and a summary."""
    convs = []
    by_cat: Counter = Counter()
    by_level: Counter = Counter()
    unchecked: Counter = Counter()
    for r in reports:
        d = r.to_dict()
        d["findings"] = visible(r.findings, min_level)
        for f in d["findings"]:
            by_cat[f["category"]] += 1
            by_level[f["level"]] += 1
        for n in r.not_checkable:
            unchecked[n["rule"]] += 1
        convs.append(d)
    errs = [e.to_dict() if isinstance(e, ImportIssue) else dict(e) for e in errors]
    agents = aggregate_agents(reports)
    summary = {
        "conversations": len(reports),
        "turns": sum(r.turns for r in reports),
        "agent_turns": sum(r.agent_turns for r in reports),
        "findings": sum(by_cat.values()),
        "by_category": dict(by_cat.most_common()),
        "by_level": {lvl: by_level[lvl] for lvl in LEVELS if by_level[lvl]},
        "mean_score": round(sum(r.score for r in reports) / len(reports), 1) if reports else None,
        "not_checkable": dict(unchecked),
        "errors": len(errs),
        "min_level": min_level,
        "rules": list(rules_sources or []),
    }
    return {"conversations": convs, "agents": agents, "errors": errs, "summary": summary}


def turns_of(reports: list[ConversationReport]) -> list[list[tuple[str, str]]]:
    """(role, text) of every turn, aligned with the report's conversations."""
    return [
        [(t.role, t.text) for t in r.conversation.turns] if r.conversation else [] for r in reports
    ]


def import_options(
    agent_names=(),
    agent_pattern: str | None = None,
    mapping: str | None = None,
    format_in: str | None = None,
):
    """ImportOptions (coach/options.py) from the CLI's values; UsageError (Chinese)
    when the pattern, the mapping file or the format name is unusable."""
    from .agents import AgentOptionError, compile_pattern, split_names
    from .mapping import MappingError, load_mapping
    from .options import ImportOptions
    from .transcripts import FORMATS_IN

    try:
        names = tuple(split_names(agent_names))
        pattern = compile_pattern(agent_pattern) if agent_pattern else None
        parsed = load_mapping(mapping) if mapping else None
    except (AgentOptionError, MappingError) as exc:
        raise UsageError(str(exc)) from None
    if format_in and format_in not in FORMATS_IN:
        raise UsageError(f"未知的输入格式 {format_in!r}，可选: {', '.join(FORMATS_IN)}")
    return ImportOptions(names, pattern, format_in or None, parsed)


def load_options(
    agent_names=(),
    agent_pattern: str | None = None,
    mapping: str | None = None,
    format_in: str | None = None,
) -> dict:
    """Loader options from the CLI's values (`import_options(...).loader()`)."""
    return import_options(agent_names, agent_pattern, mapping, format_in).loader()


def check_paths(
    paths: list[str],
    checker: Checker,
    stdin=None,
    progress=None,
    load: dict | None = None,
) -> tuple[list[ConversationReport], list[ImportIssue]]:
    """Load every path and check every conversation; broken input becomes errors."""
    convs = []
    errors: list[ImportIssue] = []
    for p in paths:
        c, e = load_path(p, stdin=stdin, **(load or {}))
        convs.extend(c)
        errors.extend(e)
    reports = []
    for n, conv in enumerate(convs, 1):
        reports.append(checker.check_conversation(conv))
        if progress is not None:
            progress(n, len(convs))
    return reports, errors


def check_records(
    records: list[dict] | dict, checker: Checker | None = None, min_level: str = "info"
) -> dict:
    """The JSON report for conversations given as dicts (the web API's request body):
    one conversation `{"id", "turns": [...]}` or a list of them. Invalid records become
    errors with `line` = their 1-based position; the others are still checked."""
    from .importers import conversation_from_dict

    if min_level not in LEVELS:
        raise UsageError(f"未知的级别 {min_level!r}，可选: {', '.join(LEVELS)}")
    checker = checker or Checker()
    items = records if isinstance(records, list) else [records]
    reports, errors = [], []
    for n, record in enumerate(items, 1):
        try:
            conv = conversation_from_dict(record, f"<request>#{n}", n)
        except ValueError as exc:
            errors.append(ImportIssue("<request>", n, str(exc)))
            continue
        reports.append(checker.check_conversation(conv))
    return build_report(reports, errors, min_level, checker.pack.sources)


def _usage(paths, fmt, min_level, output) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"未知的输出格式 {fmt!r}，可选: {', '.join(FORMATS)}")
    if min_level not in LEVELS:
        raise UsageError(f"未知的级别 {min_level!r}，可选: {', '.join(LEVELS)}")
    if not paths:
        raise UsageError("请至少指定一个文件、文件夹或 -（标准输入）")
    for p in paths:
        if p != "-" and not Path(p).exists():
            raise UsageError(f"路径不存在: {p}")
    if fmt == "xlsx" and not output:
        raise UsageError("xlsx 格式需要用 --output 指定输出文件")


def run_check(
    paths: list[str],
    fmt: str = "text",
    rules_paths: list[str] | tuple = (),
    min_level: str = "info",
    output: str | None = None,
    stdin=None,
    progress=None,
    load: dict | None = None,
) -> int:
    """Check transcripts and write the report; returns the exit code (see module doc)."""
    from . import writers

    try:
        _usage(list(paths), fmt, min_level, output)
        try:
            pack = load_rules(list(rules_paths))
        except RuleError as exc:
            raise UsageError(str(exc)) from None
        checker = Checker(pack)
        reports, errors = check_paths(
            list(paths), checker, stdin=stdin, progress=progress, load=load
        )
        report = build_report(reports, errors, min_level, pack.sources)
        writers.write(report, fmt, output, turns_of(reports) if fmt != "json" else None)
    except UsageError as exc:
        print(f"用法错误: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"无法写入输出: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: no traceback for users
        print(f"内部错误: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    if not reports:
        print("没有找到可检查的会话（输入为空，或每条记录都无法读取）", file=sys.stderr)
        return EXIT_FINDINGS
    if report["summary"]["findings"] or report["errors"]:
        return EXIT_FINDINGS
    return EXIT_CLEAN
