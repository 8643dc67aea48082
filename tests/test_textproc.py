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
