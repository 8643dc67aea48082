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
    kb.engine.levers.synonyms = False
    try:
        assert "product-refund" not in top(kb, "返款")
    finally:
        kb.engine.levers.synonyms = True


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
