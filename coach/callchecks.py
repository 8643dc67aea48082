"""Check types for telephone calls and contact details, on the shared check classes.

- `contact`: a personal mobile number or e-mail address given out by the agent (a
  private channel); the team's official numbers and addresses (pack setting
  `official_contacts`) are allowed, and so are the customer's own and third parties'.
- `hold_return`: after a hold, the agent's return neither thanks the customer for
  waiting nor apologises (感谢您的耐心等待); the silence is measured when times exist.
- `hold_silence`: the silence of a hold is longer than `seconds` (needs times).
- `closing_sequence`: the last agent turns of a call must ask whether anything else
  is needed (`ask`) and thank the customer (`thanks`).
- `manual`: a norm text cannot show (ring count, tone): only listed as not checkable.

Detection is linear: fixed-width regexes for numbers, and for e-mail addresses a
bounded scan either side of each @ (no backtracking regex over user text).
"""

from __future__ import annotations

import re

from kb.textproc import normalize

from .checks import CHECK_TYPES, Check, HoldCheck, is_question
from .context import ConvContext, Hit, NotCheckable
from .patterns import Matcher
from .textview import TextView

_DIGITS = "0-9零〇幺一二两三四五六七八九"
_MOBILE = (
    re.compile(rf"(?<![{_DIGITS}])[1幺一][3-9三四五六七八九][{_DIGITS}]{{9}}(?![{_DIGITS}])"),
    re.compile(r"(?<![0-9])1[3-9][0-9][- ][0-9]{4}[- ][0-9]{4}(?![0-9])"),
)
_SPOKEN = str.maketrans("零〇幺一二两三四五六七八九", "0011223456789")
_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
MAX_LOCAL, MAX_DOMAIN = 64, 253
WINDOW = 20  # characters either side of a number that say whose it is
# whose number it is: the agent's own, the customer's, or a third party's (配送员的电话…)
SELF = frozenset("我 我的 本人 个人 私人 小妹 妹子 俺".split())
CUSTOMER = frozenset("您 你 客户 顾客 收货人 机主 用户 尾号".split())
THIRD = frozenset(
    "配送员 快递员 快递 师傅 商家 卖家 售后 站点 网点 门店 厂家 维修 营业厅 物流 司机 骑手".split()
)


def digits_of(text: str) -> str:
    """The digits of a number as written or spoken (幺三八… → 138…)."""
    return "".join(ch for ch in text.translate(_SPOKEN) if ch.isascii() and ch.isdigit())


def _emails(norm: str) -> list[tuple[int, int]]:
    """Spans of e-mail addresses: a bounded scan either side of every @."""
    out = []
    at = norm.find("@")
    while at >= 0:
        lo = at
        while lo > 0 and at - lo < MAX_LOCAL and norm[lo - 1] in _LOCAL:
            lo -= 1
        hi = at + 1
        while hi < len(norm) and hi - at <= MAX_DOMAIN and norm[hi] in _DOMAIN:
            hi += 1
        while hi > at + 1 and norm[hi - 1] in ".-":
            hi -= 1
        domain = norm[at + 1 : hi]
        if lo < at and "." in domain and not domain.startswith("."):
            out.append((lo, hi))
        at = norm.find("@", max(hi, at + 1))
    return out


def contacts_in(norm: str) -> list[tuple[int, int]]:
    """Spans of mobile numbers and e-mail addresses in normalised text, in order."""
    spans = [m.span() for rx in _MOBILE for m in rx.finditer(norm)]
    if "@" in norm:
        spans += _emails(norm)
    return sorted(spans)


def _official(settings: dict, extra: list) -> tuple[frozenset[str], frozenset[str]]:
    numbers, mails = set(), set()
    for item in [*(settings.get("official_contacts") or []), *extra]:
        text = normalize(str(item)).strip().lower()
        if "@" in text:
            mails.add(text)
        elif digits_of(text):
            numbers.add(digits_of(text))
    return frozenset(numbers), frozenset(mails)


class Contact(Check):
    """A personal mobile number or e-mail address given out by the agent."""

    name = "contact"

    def __init__(self, rule) -> None:
        super().__init__(rule)
        self.numbers: frozenset[str] = frozenset()
        self.mails: frozenset[str] = frozenset()
        self.customer = CUSTOMER | frozenset(self.params.get("customer", []))
        self.third = THIRD | frozenset(self.params.get("third_party", []))
        self.configure({})

    def configure(self, settings: dict) -> None:
        self.numbers, self.mails = _official(settings, self.params.get("allowed") or [])

    def run(self, ctx: ConvContext) -> list[Hit]:
        hits = []
        for i in ctx.scope(self.rule.scope):
            view = ctx.view(i)
            for s, e in self.memo(view, _contacts)[:3]:
                if not self._allowed(ctx, i, view, s, e):
                    hits.append(Hit(i, s, e))
        return hits

    def _allowed(self, ctx: ConvContext, i: int, view: TextView, s: int, e: int) -> bool:
        found = view.norm[s:e].lower()
        if "@" in found:
            if found in self.mails or found[found.index("@") :] in self.mails:
                return True
            key = found
        else:
            key = digits_of(found)
            if key in self.numbers:
                return True
        # the customer's own, given earlier in the conversation (您的号码是…)
        for j in range(i - 1, -1, -1):
            t = ctx.turns[j]
            if t.role == "customer" and key in (
                digits_of(t.text) if "@" not in key else normalize(t.text).lower()
            ):
                return True
        if is_question(view, *view.sentence(s), strict=True):
            return True
        lo = view.clause(s)[0]
        if lo == s:  # a number alone in its clause: the clause before says whose
            lo = view.sentence(max(s - 1, 0))[0]
        before = view.norm[max(lo, s - WINDOW) : s]  # who is named, as text
        if any(w in before for w in self.third):
            return True  # 配送员的电话是…
        near = view.tokens_in(max(0, s - WINDOW), min(len(view.norm), e + WINDOW))
        if any(t.text in SELF for t in near):
            return False  # 打我手机… / …这是我的
        return any(w in before for w in self.customer)  # 您的号码… / 您预留的…


class Manual(Check):
    """A norm text cannot show: listed under not_checkable with its reason."""

    name = "manual"

    def run(self, ctx: ConvContext) -> list[Hit]:
        raise NotCheckable(str(self.params.get("reason") or "文字记录无法体现该规范"))


class HoldReturn(HoldCheck):
    """After a hold, the agent's return must thank or apologise for the wait."""

    name = "hold_return"
    pattern_params = (*HoldCheck.pattern_params, "thanks")

    def __init__(self, rule) -> None:
        super().__init__(rule)
        self.thanks = Matcher(self.param_patterns["thanks"])
        self.min_silence = float(self.params.get("min_silence", 0))

    def _thanks(self, view: TextView) -> bool:
        return self.thanks.any(view) is not None

    def returns(self, ctx: ConvContext):
        """(hold turn, return turn, silence seconds or None) of every hold."""
        for i in ctx.agent:
            if self.memo(ctx.view(i), self._hold) is None:
                continue
            j = ctx.nearest(i, "agent", 1)
            if j is None or self.memo(ctx.view(j), self._hold) is not None:
                continue  # the call ended on hold, or the hold goes on
            a, b = ctx.turns[i], ctx.turns[j]
            left = a.end if getattr(a, "end", None) is not None else a.ts
            silence = b.ts - left if left is not None and b.ts is not None else None
            yield i, j, silence

    def run(self, ctx: ConvContext) -> list[Hit]:
        hits = []
        for _i, j, silence in self.returns(ctx):
            if ctx.target is not None and ctx.target != j:
                continue
            if silence is not None and silence < self.min_silence:
                continue
            if self.memo(ctx.view(j), self._thanks):
                continue
            hits.append(Hit(j, 0, 0, f"静音约{silence:.0f}秒" if silence is not None else ""))
        return hits


class HoldSilence(HoldReturn):
    """The silence of a hold is longer than `seconds` (the norm: about a minute)."""

    name = "hold_silence"
    needs_timestamps = True

    def __init__(self, rule) -> None:
        super().__init__(rule)
        self.seconds = float(self.params.get("seconds", 60))

    def run(self, ctx: ConvContext) -> list[Hit]:
        hits = []
        for _i, j, silence in self.returns(ctx):
            if silence is None:
                raise NotCheckable("缺少时间戳，无法计算等待静音时长")
            if silence > self.seconds and (ctx.target is None or ctx.target == j):
                hits.append(Hit(j, 0, 0, f"{silence:.0f}秒"))
        return hits


class ClosingSequence(Check):
    """The last agent turns ask whether anything else is needed, and thank."""

    name = "closing_sequence"
    pattern_params = ("ask", "thanks")

    def __init__(self, rule) -> None:
        super().__init__(rule)
        self.ask = Matcher(self.param_patterns["ask"])
        self.thanks = Matcher(self.param_patterns["thanks"])
        self.window = max(1, int(self.params.get("window", 3)))

    def run(self, ctx: ConvContext) -> list[Hit]:
        if not ctx.agent:
            raise NotCheckable("会话中没有客服发言")
        last = ctx.agent[-1]
        if ctx.target is not None and ctx.target != last:
            return []
        tail = ctx.agent[-self.window :]
        missing = []
        if not any(self.ask.any(ctx.view(i)) for i in tail):
            missing.append("未询问是否还有其他需要")
        if not any(self.thanks.any(ctx.view(i)) for i in tail):
            missing.append("未致谢")
        if not missing:
            return []
        pos = len(ctx.turns[last].text)
        return [Hit(last, pos, pos, "、".join(missing))]


CALL_CHECK_TYPES = [Contact, Manual, HoldReturn, HoldSilence, ClosingSequence]
CHECK_TYPES.update({c.name: c for c in CALL_CHECK_TYPES})


def _contacts(view: TextView) -> list[tuple[int, int]]:
    """contacts_in for a view (remembered per distinct text)."""
    return contacts_in(view.norm)
