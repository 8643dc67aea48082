"""Who the agents are: sender names and a name pattern given by the supervisor.

`AgentTest` answers "is this sender an agent?" for every import format. It is built
from `--agent NAME` (repeatable), `--agent-pattern REGEX` and the default prefix 客服.
A format that says itself who sent a message (MemoTrace `IsSender`, 七鱼 `fromUser`,
Chatwoot `message_type`, 企业微信 internal ids) uses that, and the test only for
formats that do not.

The pattern runs with Python `re` on sender names only, cut to `MAX_NAME_CHARS`,
once per distinct name. To keep that bounded whatever a supervisor types, a pattern
is refused (with a Chinese message) when it is longer than `MAX_PATTERN_CHARS`, has
more than `MAX_REPEATS` quantifiers, repeats something that itself repeats or
branches (`(a+)+`, `(a|b)*`: the shapes that backtrack exponentially), or uses a
back-reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

try:  # Python 3.11+
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from kb.errors import KbError

DEFAULT_AGENT_PREFIXES = ("客服",)
SYSTEM_NAMES = ("系统", "系统消息", "system")
MAX_PATTERN_CHARS = 100
MAX_REPEATS = 3
MAX_NAME_CHARS = 64
MAX_AGENT_NAMES = 200
MAX_SENDERS_LISTED = 10

_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)}
_NESTED = _REPEATS | {_sre.BRANCH, _sre.GROUPREF, _sre.GROUPREF_EXISTS}


class AgentOptionError(KbError, ValueError):
    """A bad --agent / --agent-pattern value (Chinese message; the CLI exits 2)."""

    status = 400


def _walk(items, depth: int = 0):
    """Yield (op, arg, inside_repeat) over a parsed pattern."""
    for op, arg in items:
        yield op, arg, depth
        inner = depth + (1 if op in _REPEATS else 0)
        if op in _REPEATS:
            yield from _walk(arg[2], inner)
        elif op == _sre.SUBPATTERN:
            yield from _walk(arg[-1], inner)
        elif op == _sre.BRANCH:
            for alt in arg[1]:
                yield from _walk(alt, inner)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            yield from _walk(arg[1], inner)


# Python's regex error messages, said in Chinese (the rest: 语法错误)
_REGEX_PROBLEMS = (
    ("unterminated character set", "方括号 [ 没有闭合"),
    ("missing ), unterminated subpattern", "括号 ( 没有闭合"),
    ("unbalanced parenthesis", "多了一个右括号 )"),
    ("nothing to repeat", "* + ? 或 {n,m} 前面没有可重复的内容"),
    ("multiple repeat", "重复符号连用（如 ** 或 +*）"),
    ("bad escape", "无效的转义（反斜杠 \\ 后的字符）"),
    ("bad character range", "字符范围无效（如 [z-a]）"),
    ("unknown extension", "不支持的 (? 写法"),
    ("missing group name", "缺少分组名"),
    ("unknown group name", "引用了不存在的分组名"),
)


def regex_problem(exc: re.error) -> str:
    """A Chinese reason for a regex compile error, with where it is."""
    msg = str(getattr(exc, "msg", "") or exc)
    reason = next((zh for en, zh in _REGEX_PROBLEMS if msg.startswith(en)), "语法错误")
    pos = getattr(exc, "pos", None)
    return f"{reason}（第 {pos + 1} 个字符处）" if isinstance(pos, int) else reason


def compile_pattern(pattern: str) -> re.Pattern:
    """Compile a supervisor's agent-name pattern, or raise AgentOptionError."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise AgentOptionError(f"客服名称规则过长（最多 {MAX_PATTERN_CHARS} 个字符）")
    try:
        parsed = _sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise AgentOptionError(f"客服名称规则不是有效的正则表达式：{regex_problem(exc)}") from None
    except (RecursionError, OverflowError):
        raise AgentOptionError("客服名称规则不是有效的正则表达式：嵌套或数字过大") from None
    repeats = 0
    for op, _arg, depth in _walk(parsed):
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            raise AgentOptionError("客服名称规则不能使用反向引用（\\1 等）")
        if op in _REPEATS:
            repeats += 1
        if depth and op in _NESTED:
            raise AgentOptionError(
                "客服名称规则过于复杂：重复的部分（* + {n,m}）里不能再有重复或“|”分支"
            )
    if repeats > MAX_REPEATS:
        raise AgentOptionError(f"客服名称规则过于复杂：最多 {MAX_REPEATS} 处重复（* + ? {{n,m}}）")
    return compiled


def split_names(values: Iterable[str]) -> list[str]:
    """Agent names from repeated options or a form field (comma, 、 or newline separated)."""
    out: list[str] = []
    for value in values:
        for part in re.split(r"[,，、;；\n\r]+", value or ""):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    if len(out) > MAX_AGENT_NAMES:
        raise AgentOptionError(f"客服名称最多 {MAX_AGENT_NAMES} 个")
    if any(len(n) > MAX_NAME_CHARS for n in out):
        raise AgentOptionError(f"客服名称过长（每个最多 {MAX_NAME_CHARS} 个字符）")
    return out


class AgentTest:
    """Is a sender an agent, a system account, or a customer?"""

    def __init__(
        self,
        names: Iterable[str] = (),
        pattern: str | re.Pattern | None = None,
        prefixes: Iterable[str] | None = None,
        aliases: dict[str, str] | None = None,
    ):
        # aliases: a sender name -> the user account it stands for (the team setting);
        # every alias is an agent name too
        self.aliases = dict(aliases or {})
        self.names = set(names) | set(self.aliases)
        if isinstance(pattern, str):
            pattern = compile_pattern(pattern) if pattern else None
        self.pattern = pattern
        self.prefixes = tuple(prefixes) if prefixes is not None else DEFAULT_AGENT_PREFIXES
        self._cache: dict[str, str] = {}

    @property
    def given(self) -> bool:
        """Did the supervisor name agents (names or a pattern)?"""
        return bool(self.names or self.pattern)

    def role(self, name: str, *ids: str) -> str:
        """agent / system / customer for a sender name (and its other ids, e.g. a QQ
        number or wxid, which --agent may name too)."""
        key = "\x00".join((name, *ids))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._role(name.strip(), [i.strip() for i in ids if i])
            if len(self._cache) < 10_000:
                self._cache[key] = hit
        return hit

    def _role(self, name: str, ids: list[str]) -> str:
        if name in self.names or any(i in self.names for i in ids):
            return "agent"
        if name in SYSTEM_NAMES:
            return "system"
        if self.pattern is not None:
            for candidate in (name, *ids):
                if candidate and self.pattern.search(candidate[:MAX_NAME_CHARS]):
                    return "agent"
        for prefix in self.prefixes:
            if name.startswith(prefix):
                return "agent"
        return "customer"

    def is_agent(self, name: str, *ids: str) -> bool:
        return self.role(name, *ids) == "agent"

    def account(self, name: str) -> str | None:
        """The user account an agent's sender name is an alias of, or None."""
        return self.aliases.get(name.strip()) if self.aliases else None


def agent_test(options: dict) -> AgentTest:
    """The AgentTest of loader options (`agent_test`, or names/pattern/prefixes)."""
    test = options.get("agent_test")
    if isinstance(test, AgentTest):
        return test
    return AgentTest(
        options.get("agent_names") or (),
        options.get("agent_pattern"),
        options.get("agent_prefixes"),
        options.get("agent_aliases"),
    )


def link_accounts(convs, agents: AgentTest) -> None:
    """Set each conversation's agent to the user account its agent's sender name (or
    its agent id) is an alias of, so the transcript is linked to that account (我的质检,
    appeals, the agent's trends) as when the names are equal."""
    if not agents.aliases:
        return
    for conv in convs:
        account = agents.account(conv.agent) if conv.agent else None
        if account is None:
            for turn in conv.turns:
                if turn.role == "agent" and turn.speaker:
                    account = agents.account(turn.speaker)
                    if account is not None:
                        break
        if account is not None:
            conv.agent = account


def senders_note(names: Iterable[str]) -> str:
    """`小王、小李 等 12 人` for a reason text."""
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        return "（无法区分发送人）"
    shown = "、".join(n[:MAX_NAME_CHARS] for n in names[:MAX_SENDERS_LISTED])
    more = f" 等 {len(names)} 人" if len(names) > MAX_SENDERS_LISTED else ""
    return shown + more


def agent_id(speaker: str, prefixes=None) -> str:
    """The agent's id in a speaker name: 客服wang / 客服-小王 → wang / 小王, so it can
    equal the agent's user name (我的质检, appeals); the name alone if nothing is left."""
    name = speaker.strip()
    for prefix in prefixes or DEFAULT_AGENT_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :].lstrip(" -_:：·")
            return rest or name
    return name
