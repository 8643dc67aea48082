"""The shared text pipeline: normalisation, segmentation, exact offsets."""

import pytest

from kb import textproc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３！", "abc123!"),
        ("退貨運費怎麼算", "退货运费怎么算"),
        ("　花呗", " 花呗"),
        ("iPhone", "iphone"),
    ],
)
def test_normalize_width_case_and_traditional(raw, expected):
    assert textproc.normalize(raw) == expected
    assert len(textproc.normalize(raw)) == len(raw)


def test_offsets_are_exact_on_repeated_words():
    text = "退款退款，重要的事说两遍：退款"
    toks = [t for t in textproc.tokenize(text) if t.text == "退款"]
    assert [(t.start, t.end) for t in toks] == [(0, 2), (2, 4), (13, 15)]
    for t in textproc.tokenize(text):
        assert textproc.normalize(text[t.start : t.end]) == t.text


def test_offsets_survive_full_width_and_traditional_input():
    text = "請問ＶＩＰ會員積分"
    toks = textproc.tokenize(text)
    assert "会员积分" in [t.text for t in toks]
    for t in toks:
        assert textproc.normalize(text[t.start : t.end]) == t.text


@pytest.mark.parametrize(
    "word", ["花呗", "七天无理由", "运费险", "尽可能", "不可能", "可能性", "电子发票"]
)
def test_user_dictionary_keeps_domain_words_whole(word):
    assert word in [t.text for t in textproc.tokenize(f"关于{word}的问题")]


def test_terms_drop_stop_words_and_punctuation():
    assert textproc.terms("请问，发票怎么开？") == ["发票", "开"]


def test_char_unigrams_keep_latin_and_digit_runs_whole():
    assert textproc.char_unigrams("花唄能充ＱＢ吗？充100") == [
        ("花", 0),
        ("呗", 1),
        ("能", 2),
        ("充", 3),
        ("qb", 4),
        ("吗", 6),
        ("充", 8),
        ("100", 9),
    ]


def test_search_terms_without_hmm_guesses():
    # jieba's HMM glues 能 + 换 into a word no paraphrase would share.
    text = "花呗能换本人另一个名下的支付宝吗"
    assert "能换" in textproc.terms(text)
    assert textproc.terms(text, hmm=False) == ["花呗", "换", "本人", "另", "名下", "支付宝"]


SEARCH_DRIFT = """
import json, sys
from kb import textproc
from coach.rules import RuleError, load_rules
q = "客服说不是我负责的怎么办"
before = textproc.terms(q, hmm=False)
pack = load_rules()
after_default = textproc.terms(q, hmm=False)
try:
    load_rules([sys.argv[1]])
except RuleError:
    pass
after_failed = textproc.terms(q, hmm=False)
coach = [t for t, _, _ in pack.segmenter.segment_block(q)]
print(json.dumps([before, after_default, after_failed, coach], ensure_ascii=False))
"""


def test_rule_packs_never_change_search_analysis(tmp_path):
    """The coach segments with its own tokenizer (the shared dictionary plus its rule
    words): loading the default pack, or a team pack that fails its examples, leaves
    search's analysis as the index has it. Run in a fresh process: this one has
    loaded packs already."""
    import json
    import subprocess
    import sys

    from .conftest import REPO

    failing = tmp_path / "team.yaml"
    failing.write_text(
        "rules:\n  - id: team-x\n    category: improper\n    check: token\n"
        "    level: warning\n    weight: 2\n    message: 测试\n    suggestion: 测试\n"
        "    words: [怎么办理由]\n    examples:\n      must: [没有这个词]\n      must_not: [您好]\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-c", SEARCH_DRIFT, str(failing)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    before, after_default, after_failed, coach = json.loads(proc.stdout)
    assert before == after_default == after_failed
    assert "不是" in before and "不是我负责" not in before
    assert "不是我负责" in coach  # the coach still knows its rule vocabulary


def test_two_vocabularies_segment_independently():
    from coach.textview import segmenter_for

    plain = segmenter_for()
    taught = segmenter_for(frozenset({"八九不离十吧"}))
    text = "八九不离十吧"
    assert [t for t, _, _ in taught.segment_block(text)] == ["八九不离十吧"]
    assert [t for t, _, _ in plain.segment_block(text)] != ["八九不离十吧"]
