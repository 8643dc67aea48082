"""Search levers on real Chinese examples: synonyms, pinyin, initials, mixed input,
traditional characters, homophone typos."""

import pytest

from kb import pinyin
from kb.service import KnowledgeBase

from .conftest import REPO


def top(kb, q, n=3):
    return [h.id for h in kb.search(q, log=False).hits][:n]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("fp", "product-invoice"),  # initials of 发票
        ("tk", "product-refund"),  # initials of 退款
        ("tuikuan", "product-refund"),  # full pinyin
        ("退kuan", "product-refund"),  # mixed input
        ("發票怎麼開", "product-invoice"),  # traditional characters
        ("ｆｐ", "product-invoice"),  # full-width letters
        ("发漂怎么开", "product-invoice"),  # homophone typo of 发票
        ("返款", "product-refund"),  # synonym of 退款
    ],
)
def test_agents_find_what_they_mean(kb, query, expected):
    assert expected in top(kb, query)


def test_synonyms_weigh_less_than_the_query_words(kb):
    from kb.models import Article

    kb.save(Article(id="product-fankuan", title="返款规则", category="product"))
    assert top(kb, "返款")[:2] == ["product-fankuan", "product-refund"]
    # Without synonyms (and without the single characters, where 款 is shared) the
    # refund article is not found.
    kb.engine.levers.synonyms = False
    kb.engine.levers.chars = False
    try:
        assert "product-refund" not in top(kb, "返款")
    finally:
        kb.engine.levers.synonyms = True
        kb.engine.levers.chars = True


def test_pinyin_ranks_below_exact_chinese(kb):
    from kb.models import Article

    kb.save(Article(id="product-tk", title="tk 型号说明", category="product"))
    assert top(kb, "tk")[0] == "product-tk"


def test_typing_the_initials_of_every_starter_title_finds_it(tmp_path):
    base = KnowledgeBase(tmp_path / "starter")
    base.import_dir(REPO / "articles")
    missed = []
    for art in base.store.iter_articles():
        ini = pinyin.initials(art.title)[: pinyin.MAX_PREFIX]
        if art.id not in [h.id for h in base.engine.search(ini, snippets=False, limit=5).hits]:
            missed.append((art.title, ini))
    assert missed == []


@pytest.fixture
def quota_kb(tmp_path):
    from kb.models import Article

    base = KnowledgeBase(tmp_path / "quota")
    for aid, title in {
        "hb-raise": "花呗怎样提升额度",
        "hb-check": "花呗额度在哪里查看",
        "jb-raise": "借呗额度怎样提升",
        "hb-repay": "花呗怎么还款",
        "hb-repay-late": "花呗还款日过了还能还款吗，会不会影响信用记录",
    }.items():
        base.save(Article(id=aid, title=title, category="product"))
    return base


def test_single_characters_credit_a_paraphrase(quota_kb):
    # 提高 and 提升 share no word and no bigram, only the character 提.
    assert top(quota_kb, "花呗额度提高", 1) == ["hb-raise"]
    assert top(quota_kb, "花呗额度怎么提高", 1) == ["hb-raise"]
    quota_kb.engine.levers.chars = False
    try:
        assert top(quota_kb, "花呗额度提高", 1) != ["hb-raise"]
        assert top(quota_kb, "花呗额度怎么提高", 1) == ["jb-raise"]
    finally:
        quota_kb.engine.levers.chars = True


def test_characters_alone_find_nothing(quota_kb):
    # 提款机 shares 提 and 款 with titles, but no word and no bigram.
    assert top(quota_kb, "提款机") == []
    assert top(quota_kb, "花呗提款机", 5) != []


def test_coverage_prefers_the_question_with_least_left_unexplained(quota_kb):
    assert top(quota_kb, "花呗还款", 2) == ["hb-repay", "hb-repay-late"]
    quota_kb.engine.levers.coverage = False
    try:
        assert top(quota_kb, "花呗还款", 2) == ["hb-repay-late", "hb-repay"]
    finally:
        quota_kb.engine.levers.coverage = True


def test_long_questions_cap_the_weight_of_single_characters(quota_kb):
    from kb.search import CHAR_FULL_WEIGHT_UPTO

    engine = quota_kb.engine
    short = [w for f, _, w in engine.plan("花呗额度提高") if f == "chars"]
    assert short == [engine.levers.char_weight] * 6
    long_q = (
        "我上个月用花呗买了一台手机，这个月想提前还款，请问提前还款会不会收手续费，额度多久恢复"
    )
    chars = [w for f, _, w in engine.plan(long_q) if f == "chars"]
    assert len(chars) > CHAR_FULL_WEIGHT_UPTO
    assert sum(chars) == pytest.approx(engine.levers.char_weight * CHAR_FULL_WEIGHT_UPTO)
