"""Rule word entries compiled into token patterns, matched on jieba tokens.

An entry is a word (`差不多`), a token phrase (`还有 … 其他/其它 … 帮/帮到`) or a
mapping `{word: …, <option>: …}`. In a phrase, spaces separate slots, `/` separates
the alternatives of a slot, and `…` lets up to `max_gap` (default 4) tokens sit
between two slots; slots without `…` must be adjacent tokens. A match never
crosses a sentence end. Options (all optional):

- `next` / `not_next`, `prev` / `not_prev`: the adjacent token must (not) be one of
- `require_next`: the match must be followed by another token in its block
- `after_number`: a number (or number + unit) must come right before (`3天左右`)
- `unless_before` / `unless_after` / `unless_sentence`: skip when one of these tokens
  is earlier / later / anywhere in the same sentence
- `unless_time`: skip when the turn holds a date, time or duration
- `whole_turn`: the sentence must be the whole answer (the rest is only particles)
- `then_only`: up to the end of its clause, the match may only be followed by these
  tokens (我帮您查一下哦 is a hold; 帮您核实该订单已充值成功 reports a result)
- `not_subject`: skip when the subject of the word is one of these tokens: the nearest
  of them or of the agent's own subjects (我 / 这边 / 小妹 …) before the word, in its
  comma-delimited clause and at most 3 tokens before it, is one of these (如果您不清楚订单号 is the customer's
  not-knowing, not the agent's hedge; 您的问题这边不清楚 is the agent's)
- `strict_question`: for the question guard, only ? or 吗/么 make a question (不知道什么时候
  到 is a statement with an embedded question, not a question to the customer)
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate

from kb.errors import KbError
from kb.textproc import Token, normalize

from . import limits
from .textview import SENT_END, TextView, index_at, mark_positions

GAP_MARKS = ("…", "...", "……")
DEFAULT_GAP = 4
LIST_OPTIONS = (
    "then_only",
    "next",
    "not_next",
    "prev",
    "not_prev",
    "unless_before",
    "unless_after",
    "unless_sentence",
    "not_subject",
)
BOOL_OPTIONS = ("require_next", "after_number", "unless_time", "whole_turn", "strict_question")
OPTIONS = (*LIST_OPTIONS, *BOOL_OPTIONS, "max_gap")

# Tokens that carry no content: what may surround a whole-turn answer.
PADDING = frozenset("亲 亲亲 亲爱的 亲爱哒 呢 哦 哈 啊 呀 哟 啦 嘛 噢 喔 哒 的 了 吧".split())
_NUM_BEFORE = re.compile(
    r"(?:\d|[零一二两三四五六七八九十百千万半]|\[(?:数字|时间|金额|日期)x\])\s*个?多?"
    r"(?:点钟|点|天|日|号|个小时|小时|分钟|分|秒|周|星期|个月|月|年|元|块|米|公里|斤|件|"
    r"个工作日|工作日|cm|mm|kg|g|ml|l)?\s*$"
)
TIME_WORDS = (
    "今天 明天 后天 今晚 明晚 今日 明日 今明 上午 下午 中午 晚上 早上 傍晚 凌晨 月底 月初 周末 "
    "本周 下周 这周 下个月 星期 周一 周二 周三 周四 周五 周六 周日 工作日 小时 分钟 时间 当天 "
    "次日 隔天 近期 近日 这两天 日内 天内".split()
)
# A date, time or duration: placeholders, digits, 三天 / 两个工作日, or a time word.
_TIME_RE = re.compile(
    r"\[(?:数字|日期|时间|金额)x\]|\d|[一二两三四五六七八九十]+\s*(?:个)?(?:天|日|号|点|小时|分钟|周|月|工作日)|"
    + "|".join(TIME_WORDS)
)


class PatternError(KbError, ValueError):
    """A word entry that cannot be compiled."""


class PatternTooComplex(PatternError):
    """A word entry (or list) over the cost limits of coach/limits.py."""

    def __init__(self, reason: str, entry: object = None) -> None:
        super().__init__(f"过于复杂：{reason}")
        self.reason = reason
        self.entry = entry


@dataclass(frozen=True)
class Pattern:
    """One compiled entry: token slots plus options."""

    raw: str
    slots: tuple[tuple[frozenset[str], int], ...]  # (alternatives, max gap before)
    opts: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def first(self) -> frozenset[str]:
        """Alternatives of the first slot (what the prefilter looks for)."""
        return self.slots[0][0]


@dataclass(frozen=True, slots=True)
class Match:
    """A pattern found at [start, end) of a turn, with its neighbourhood."""

    start: int
    end: int
    pattern: Pattern
    prev: str | None
    next: str | None
    sentence: tuple[int, int]


def parse_entry(entry: object) -> Pattern:
    """Compile one YAML word entry (string or mapping) into a Pattern."""
    opts: dict = {}
    if isinstance(entry, dict):
        raw = entry.get("word", entry.get("phrase"))
        unknown = set(entry) - {"word", "phrase", *OPTIONS}
        if unknown:
            raise PatternError(f"未知的选项: {', '.join(sorted(map(str, unknown)))}")
        for key in LIST_OPTIONS:
            if key in entry:
                val = entry[key]
                if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
                    raise PatternError(f"选项 {key} 应为字符串列表")
                opts[key] = frozenset(normalize(v) for v in val)
        for key in BOOL_OPTIONS:
            if key in entry:
                if not isinstance(entry[key], bool):
                    raise PatternError(f"选项 {key} 应为 true/false")
                opts[key] = entry[key]
        if "max_gap" in entry:
            if not isinstance(entry["max_gap"], int) or entry["max_gap"] < 0:
                raise PatternError("选项 max_gap 应为非负整数")
            if entry["max_gap"] > limits.MAX_GAP:
                raise PatternTooComplex(f"max_gap 最大为 {limits.MAX_GAP}")
            opts["max_gap"] = entry["max_gap"]
    else:
        raw = entry
    if not isinstance(raw, str) or not raw.strip():
        raise PatternError("词条应为非空字符串，或含 word/phrase 的映射")
    gap = opts.get("max_gap", DEFAULT_GAP)
    slots: list[tuple[frozenset[str], int]] = []
    pending_gap = 0
    for part in normalize(raw).split():
        if part in GAP_MARKS:
            if not slots:
                raise PatternError(f"词条 {raw!r} 不能以 … 开头")
            pending_gap = gap
            continue
        alts = frozenset(a for a in part.split("/") if a)
        if not alts:
            raise PatternError(f"词条 {raw!r} 含空的备选词")
        if len(alts) > limits.MAX_ALTERNATIVES:
            raise PatternTooComplex(
                f"一个位置有 {len(alts)} 个备选词（最多 {limits.MAX_ALTERNATIVES} 个）"
            )
        longest = max(alts, key=len)
        if len(longest) > limits.MAX_WORD_CHARS:
            raise PatternTooComplex(
                f"备选词 {longest[:12]!r}… 有 {len(longest)} 个字"
                f"（最多 {limits.MAX_WORD_CHARS} 个）"
            )
        slots.append((alts, pending_gap))
        pending_gap = 0
        if len(slots) > limits.MAX_SLOTS:
            raise PatternTooComplex(f"词组最多 {limits.MAX_SLOTS} 个位置（用空格分隔）")
    if pending_gap:
        raise PatternError(f"词条 {raw!r} 不能以 … 结尾")
    return Pattern(raw, tuple(slots), opts)


def compile_entries(entries: list) -> list[Pattern]:
    """Compile a list of entries; the error names the offending entry."""
    if len(entries or []) > limits.MAX_ENTRIES:
        raise PatternTooComplex(f"共 {len(entries)} 条（一个列表最多 {limits.MAX_ENTRIES} 条）")
    out = []
    for entry in entries or []:
        try:
            out.append(parse_entry(entry))
        except PatternTooComplex as exc:
            raise PatternTooComplex(exc.reason, entry) from None
        except PatternError as exc:
            raise PatternError(f"{entry!r}: {exc}") from None
    return out


def vocabulary(patterns: list[Pattern]) -> set[str]:
    """Words of single-slot entries: the words the segmenter must know as units."""
    return {alt for p in patterns if len(p.slots) == 1 for alt in p.first}


_serials = itertools.count()
# Options that look beyond the word's own block, and those that look before it.
_SENTENCE_OPTIONS = frozenset(
    {
        "unless_before",
        "unless_after",
        "unless_sentence",
        "whole_turn",
        "then_only",
        "unless_time",
        "not_subject",
    }
)
_BEFORE_OPTIONS = frozenset({"unless_before", "unless_sentence", "whole_turn", "not_subject"})
# The agent speaking of itself: a subject that ends a `not_subject` look-back.
SUBJECT_REACH = 3  # tokens between a subject and its verb: 您 还是 不了解 / 您 要是 不清楚
AGENT_SUBJECTS = frozenset("我 我们 小妹 妹子 妹纸 这边 我这边 本人 咱 咱们 俺 客服 小编".split())
_AFTER_OPTIONS = frozenset({"unless_after", "unless_sentence", "whole_turn", "unless_time"})
_NONE = 1 << 62  # "no occurrence" in the chaining arrays


def _alts(alts, longest_first: bool = True) -> str:
    ordered = sorted(sorted(alts), key=len, reverse=longest_first)
    return "|".join(map(re.escape, ordered))


class _Phrase:
    """The character-level prefilter of one multi-slot pattern, linear in the text.

    A phrase can only match as tokens where, within one sentence, slot 1 is followed
    by slot 2, then slot 3 …, as substrings.  Each slot's occurrences are found once
    (one regex scan per slot); then from every slot-1 occurrence the chain takes, for
    each further slot, the occurrence with the earliest end after the previous end
    (a suffix minimum over the occurrences, found by bisection) and checks it ends
    before the next sentence mark. Cost: O(n + occurrences × slots × log n).

    Alternatives holding a sentence mark are left out of slots 2..n: tokens never
    contain one, so such an alternative can never match (and without them the
    earliest end is always the best continuation)."""

    __slots__ = ("pattern", "first", "first_alts", "rest", "present")

    def __init__(self, pattern: Pattern) -> None:
        self.pattern = pattern
        self.first = re.compile(f"(?=({_alts(pattern.first)}))")
        self.first_alts = sorted(sorted(pattern.first), key=len, reverse=True)
        self.rest: list[re.Pattern] | None = []
        for alts, _gap in pattern.slots[1:]:
            usable = [a for a in alts if not SENT_END.intersection(a)]
            if not usable:
                self.rest = None  # can never match
                break
            self.rest.append(re.compile(f"(?=({_alts(usable, longest_first=False)}))"))
        # is every slot in the text at all? (plain alternations: the cheapest scan)
        self.present = [re.compile(_alts(alts)) for alts, _ in pattern.slots]

    def starts(self, norm: str, marks: list[int]) -> list[tuple[int, int, int]]:
        """(start, end of slot 1, end of the chain) for every start where it can match."""
        if self.rest is None or not all(rx.search(norm) for rx in self.present):
            return []
        firsts = [m.start() for m in self.first.finditer(norm)]
        if not firsts:
            return []
        chains = []
        for rx in self.rest:
            found = [m.span(1) for m in rx.finditer(norm, firsts[0] + 1)]
            if not found:
                return []
            # best[k]: the earliest end among the occurrences k, k+1, …
            best = list(accumulate(reversed([e for _, e in found]), min))[::-1]
            best.append(_NONE)
            chains.append(([a for a, _ in found], best))
        n = len(norm)
        out = []
        for s in firsts:
            for alt in self.first_alts:
                if not norm.startswith(alt, s):
                    continue
                pos = s + len(alt)
                for occ_starts, best in chains:
                    k = bisect_left(marks, pos)
                    stop = marks[k] if k < len(marks) else n  # next sentence mark
                    end = best[bisect_left(occ_starts, pos)]
                    if end > stop:
                        break
                    pos = end
                else:
                    out.append((s, s + len(alt), pos))
                    break  # the longest slot-1 alternative that can lead to a match
        return out


class Matcher:
    """Finds token-aligned pattern matches in a TextView.

    The prefilter is character-level: single words form one regex alternation; a
    phrase must have every slot, in order, within one sentence (see `_Phrase`). Only
    text that passes it is segmented, and only around the candidate."""

    def __init__(self, patterns: list[Pattern], exceptions: list[str] | None = None) -> None:
        self.patterns = patterns
        self.serial = next(_serials)  # memo key: unique for the process lifetime
        self.exceptions = frozenset(normalize(e) for e in exceptions or [])
        self.by_word: dict[str, list[Pattern]] = {}
        self.phrases: list[_Phrase] = []
        for p in patterns:
            if len(p.slots) == 1:
                for alt in p.first:
                    self.by_word.setdefault(alt, []).append(p)
            else:
                self.phrases.append(_Phrase(p))
        words = sorted(self.by_word, key=len, reverse=True)
        self.words = re.compile("|".join(map(re.escape, words))) if words else None
        # any character of a first slot: the cheapest "not here at all" test
        firsts = {alt for p in patterns for alt in p.first}
        self.regex = re.compile("|".join(map(re.escape, sorted(firsts)))) if firsts else None

    def candidates(self, norm: str) -> bool:
        """Cheap character-level test: could this text contain a match at all?"""
        if self.regex is None or self.regex.search(norm) is None:
            return False
        if self.words is not None and self.words.search(norm) is not None:
            return True
        return bool(self._phrase_starts(norm, _marks(norm)))

    def matches(self, view: TextView) -> list[Match]:
        """All matches in text order, memoised on the (per-text shared) view."""
        return list(self.iter_matches(view))

    def iter_matches(self, view: TextView) -> Iterator[Match]:
        """The matches in text order, found lazily (a caller may stop early); once
        all were found they are remembered on the view. (No half-consumed generator
        is shared: views are shared between threads.)"""
        key = (self.serial, "all")
        hit = view.memo.get(key)
        if hit is not None:
            yield from hit
            return
        found = []
        for m in self.finditer(view):
            found.append(m)
            yield m
        view.memo[key] = found

    def _phrase_starts(self, norm: str, marks: list[int]) -> list:
        out = []
        for ph in self.phrases:
            out += [(s, e, [ph.pattern], reach) for s, e, reach in ph.starts(norm, marks)]
        return out

    def _starts(self, view: TextView) -> list[tuple[int, int, list[Pattern], int]]:
        """Candidates: (start, end of first slot, patterns, end of the character match)."""
        norm = view.norm
        out = []
        if self.words is not None:
            out += [
                (m.start(), m.end(), self.by_word[m.group()], m.end())
                for m in self.words.finditer(norm)
            ]
        if self.phrases:
            out += self._phrase_starts(norm, view.marks())
        out.sort(key=lambda c: (c[0], -c[1]))
        return out

    def finditer(self, view: TextView, singles_first: bool = False) -> Iterator[Match]:
        """Yield non-overlapping matches in text order (or single words first)."""
        if self.regex is None or not self.regex.search(view.norm):
            return
        starts = self._starts(view)
        if singles_first:
            starts.sort(key=lambda c: len(c[2][0].slots) > 1)
        last_end = -1
        for s, e, pats, reach in starts:
            if s < last_end and not singles_first:
                continue
            unit = view.unit_at(s, e, self.exceptions)
            if unit is None:
                continue
            for pat in pats:
                m = self._verify(view, pat, s, e, unit, reach)
                if m is not None:
                    last_end = m.end
                    yield m
                    break

    def _verify(self, view, pat: Pattern, s: int, e: int, unit, reach: int) -> Match | None:
        keys = pat.opts.keys()
        if len(pat.slots) == 1 and not (_SENTENCE_OPTIONS & keys):
            # a single word needs only its own block: the adjacent tokens live there
            st = None
            toks = view.block_tokens(s)
            a, b = 0, len(toks)
            i, j = unit.first, unit.last
            lo_hi = (-1, -1)
            found = _match_slots(pat, toks, j, b)
        else:
            # The tokens of the window the old code segmented (the blocks the character
            # match reached, the clause for `then_only`, the sentence for the other
            # context options), as index ranges of the sentence's cached token list.
            lo_hi = view.sentence(s)
            lo = lo_hi[0] if _BEFORE_OPTIONS & keys else view.block_bounds(s)[0]
            if _AFTER_OPTIONS & keys:
                hi = lo_hi[1]
            elif "then_only" in keys:
                hi = max(view.clause(reach - 1)[1], view.block_bounds(reach - 1)[1])
            else:
                hi = max(view.block_bounds(reach - 1)[1], reach)
            st = view.sentence_tokens(s)
            toks = st.toks
            found = None
            for stop in dict.fromkeys((min(hi, lo_hi[1]), lo_hi[1])):
                a, b = st.window(lo, stop)
                i = index_at(toks, s, a, b)
                if i is None:
                    return None
                j = i
                while j + 1 < b and toks[j].end < e:
                    j += 1
                found = _match_slots(pat, toks, j, b)
                if found is not None:
                    break
        if found is None:
            return None
        k, end = found
        prev = toks[i - 1].text if i > a and toks[i - 1].end == toks[i].start else None
        nxt = toks[k + 1].text if k + 1 < b and toks[k + 1].start == end else None
        if toks[i].start < s:  # word at the end of a compound token: its head
            prev = toks[i].text[: s - toks[i].start]
        if k == j and toks[k].end > e:  # word at the start of a compound: its tail
            end = e
            nxt = toks[k].text[e - toks[k].start :]
        if lo_hi == (-1, -1):
            if pat.opts and not _options_ok(pat.opts, view, None, i, k, s, prev, nxt, -1, -1):
                return None
            return Match(s, end, pat, prev, nxt, view.sentence(s))
        win = (st, a, b)
        if not _options_ok(pat.opts, view, win, i, k, s, prev, nxt, *lo_hi):
            return None
        return Match(s, end, pat, prev, nxt, lo_hi)

    def first(self, view: TextView) -> Match | None:
        """The first match, or None."""
        key = (self.serial, "first")
        if key not in view.memo:
            view.memo[key] = next(self.finditer(view), None) if self.regex else None
        return view.memo[key]

    def any(self, view: TextView) -> Match | None:
        """Some match (single words tried first: they need the least segmenting)."""
        key = (self.serial, "any")
        if key not in view.memo:
            view.memo[key] = next(self.finditer(view, singles_first=True), None)
        return view.memo[key]


def _marks(norm: str) -> list[int]:
    return mark_positions(norm, SENT_END)


_prefixes: dict[frozenset[str], tuple[str, ...]] = {}


def _tok_is(text: str, alts: frozenset[str]) -> bool:
    """Is the token one of alts, or does it start with one of two characters or more?"""
    if text in alts:
        return True
    longs = _prefixes.get(alts)
    if longs is None:
        longs = _prefixes[alts] = tuple(a for a in alts if len(a) >= 2)
    return bool(longs) and text.startswith(longs)


def _match_slots(pat: Pattern, toks: list[Token], j: int, b: int) -> tuple[int, int] | None:
    """Match slots 2..n after token j (tokens before b); return (last index, end offset)."""
    k = j
    for alts, gap in pat.slots[1:]:
        for step in range(1, gap + 2):
            idx = k + step
            if idx >= b:
                return None
            if step == 1 and gap == 0 and toks[idx].start != toks[k].end:
                return None  # adjacent slots must be in the same block
            if _tok_is(toks[idx].text, alts):
                k = idx
                break
        else:
            return None
    return k, toks[k].end


def has_time(view: TextView, lo: int, hi: int) -> bool:
    """Does the span hold a date, time or duration (a pattern, not a rule word)?"""
    return _TIME_RE.search(view.norm, lo, hi) is not None


def _options_ok(o, view, win, i, k, s, prev, nxt, lo, hi) -> bool:
    """The options of a match at tokens i..k; `win` = (sentence tokens, a, b): the
    token window [a, b) the match was found in (None for a word in its own block).
    Each test is a bisection in index sets cached per sentence, not a scan."""
    if not o:
        return True
    if "next" in o and (nxt is None or nxt not in o["next"]):
        return False
    if "not_next" in o and nxt is not None and _tok_is(nxt, o["not_next"]):
        return False
    if o.get("require_next") and nxt is None:
        return False
    if "prev" in o and (prev is None or prev not in o["prev"]):
        return False
    if "not_prev" in o and prev is not None and _tok_is(prev, o["not_prev"]):
        return False
    if o.get("after_number") and not _NUM_BEFORE.search(view.norm[max(0, s - 14) : s]):
        return False
    if win is not None:
        st, a, b = win
        for key, ranges in (
            ("unless_before", ((a, i),)),
            ("unless_after", ((k + 1, b),)),
            ("unless_sentence", ((a, i), (k + 1, b))),
        ):
            if key in o:
                words = o[key]
                pred = partial(_tok_is, alts=words)
                if any(st.any_in(("is", words), pred, x, y) for x, y in ranges):
                    return False
    if (
        "not_subject" in o
        and win is not None
        and _customer_subject(o["not_subject"], view, win, i, s)
    ):
        return False
    if o.get("unless_time") and _turn_has_time(view):
        return False
    if o.get("whole_turn") and not _only_padding_outside(view, lo, hi):
        return False
    if "then_only" in o and win is not None:
        st, a, b = win
        toks = st.toks
        end = toks[k].end
        _, clause_end = view.clause(max(end - 1, 0))
        allowed = o["then_only"]
        other = st.first_in(("not", allowed), lambda t: t not in allowed, k + 1, b)
        if other is not None and toks[other].end <= clause_end:
            return False
    return True


def _customer_subject(subjects: frozenset[str], view: TextView, win, i: int, s: int) -> bool:
    """Is the nearest subject before token i, in its clause, one of `subjects`?"""
    st, a, _b = win
    lo = bisect_left(st.starts, view.clause(s)[0], a, i)
    idx = st.where(("subject", subjects), lambda t: t in subjects or t in AGENT_SUBJECTS)
    k = bisect_left(idx, i) - 1
    near = max(lo, i - SUBJECT_REACH)
    return k >= 0 and idx[k] >= near and st.texts[idx[k]] in subjects


def _turn_has_time(view: TextView) -> bool:
    hit = view.memo.get("has_time")
    if hit is None:
        hit = view.memo["has_time"] = has_time(view, 0, len(view.norm))
    return hit


def _only_padding_outside(view: TextView, lo: int, hi: int) -> bool:
    """Only padding tokens outside [lo, hi)?  True unless the first content token of
    the turn ends by lo or the last one starts at hi or later (both found once)."""
    first_end, last_start = view.content_edges(PADDING)
    if first_end is None:
        return True
    return not (lo > 0 and first_end <= lo) and not (hi < len(view.norm) and last_start >= hi)
