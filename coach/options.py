"""How to read an upload: who the agents are, the format, a mapping file.

One `ImportOptions` value is built by every surface (the upload page, the JSON API,
`kbcoach check` / `kbcoach audit run`) and handed to the loader as
`load_bytes(data, name, **options.loader())`, so a new option is added here once.
`read_options` checks what a person typed and returns the Chinese message of each
refused field (`agents`, `agent_pattern`, `format`, `mapping`), to show next to it.
The team's agent names and aliases (core/team_agents.py) are added with `with_team`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .agents import AgentOptionError, AgentTest, compile_pattern, split_names
from .mapping import Mapping, MappingError, mapping_from_bytes
from .transcripts import FORMATS_IN

# the names --format-in accepts, as the upload page's select shows them
FORMAT_LABELS = {
    "jsonl": "JSONL（kbcoach 会话格式）",
    "json": "JSON（同 JSONL）",
    "csv": "CSV 表格",
    "xlsx": "Excel 工作簿（XLSX）",
    "chatlog": "聊天记录文本",
    "memotrace-txt": "微信 MemoTrace 文本（TXT）",
    "memotrace-csv": "微信 MemoTrace 表格（CSV）",
    "qq": "QQ 消息管理器文本",
    "wecom": "企业微信会话存档（JSON）",
    "qiyu": "网易七鱼消息（JSON）",
    "feishu": "飞书消息（JSON）",
    "chatwoot": "Chatwoot 消息（JSON）",
    "call": "通话转写（JSON / CSV）",
}
MAPPING_FORMATS = ("jsonl", "csv", "xlsx")  # the readers a mapping file applies to


@dataclass(frozen=True)
class ImportOptions:
    """Everything the loader needs besides the file: agent names, a name pattern,
    team aliases (sender name -> user account), a forced format, a mapping file."""

    agent_names: tuple[str, ...] = ()
    agent_pattern: re.Pattern | None = None
    fmt: str | None = None
    mapping: Mapping | None = None
    aliases: tuple[tuple[str, str], ...] = ()

    def with_team(self, names: Iterable[str], aliases: dict[str, str]) -> ImportOptions:
        """These options plus the team's agent names and aliases (what was typed for
        this upload comes first)."""
        merged = tuple(dict.fromkeys((*self.agent_names, *names)))
        return replace(self, agent_names=merged, aliases=(*self.aliases, *aliases.items()))

    def agent_test(self) -> AgentTest:
        return AgentTest(self.agent_names, self.agent_pattern, aliases=dict(self.aliases))

    def loader(self) -> dict:
        """Keyword arguments of `load_bytes` / `load_path` / `load_text`."""
        out: dict = {"agent_test": self.agent_test()}
        if self.fmt:
            out["fmt"] = self.fmt
        if self.mapping is not None:
            out["mapping"] = self.mapping
        return out


def _names(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise AgentOptionError("客服名称应为文字（多个用逗号分隔）")
    return list(value)


def read_options(
    agents: str | Iterable[str] | None = None,
    agent_pattern: str | None = None,
    fmt: str | None = None,
    mapping: bytes | None = None,
    mapping_name: str = "映射文件",
) -> tuple[ImportOptions, dict[str, str]]:
    """Options from a form's (or a JSON body's) values, and the Chinese message of
    each refused field; the options are only to be used when there is none."""
    errors: dict[str, str] = {}
    names: list[str] = []
    pattern = None
    try:
        names = split_names(_names(agents))
    except AgentOptionError as exc:
        errors["agents"] = str(exc)
    if agent_pattern is not None and not isinstance(agent_pattern, str):
        errors["agent_pattern"] = "客服名称规则应为文字（正则表达式）"
    elif (agent_pattern or "").strip():
        try:
            pattern = compile_pattern(agent_pattern.strip())
        except AgentOptionError as exc:
            errors["agent_pattern"] = str(exc)
    if fmt is not None and not isinstance(fmt, str):
        errors["format"] = "格式应为文字"
        fmt = None
    fmt = (fmt or "").strip() or None
    if fmt is not None and fmt not in FORMATS_IN:
        errors["format"] = f"未知的格式「{fmt[:40]}」，可选：自动识别、{'、'.join(FORMAT_LABELS)}"
    parsed = None
    if mapping is not None:
        try:
            parsed = mapping_from_bytes(mapping, mapping_name)
        except MappingError as exc:
            errors["mapping"] = str(exc)
        if fmt is not None and FORMATS_IN.get(fmt) not in MAPPING_FORMATS:
            errors.setdefault(
                "format",
                "映射文件只用于 JSON、CSV 或 XLSX 导出：请把格式选为自动识别、JSON、CSV 或 XLSX",
            )
    options = ImportOptions(tuple(names), pattern, fmt, parsed)
    return options, errors
