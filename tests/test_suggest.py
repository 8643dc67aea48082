"""Suggest as you type (titles, similar questions, frequent queries, pinyin initials)
and 您是不是要找 for a query that finds nothing."""

import time

import pytest

from kb import suggest
from kb.models import Article
from kb.suggest import suggester

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def texts(items):
    return [s["text"] for s in items]


@BOTH
@pytest.mark.parametrize(
    ("prefix", "text", "kind", "article"),
    [
        ("退款", "退款多久到账", "title", "product-refund"),  # title prefix
        ("如何", "如何开具发票", "title", "product-invoice"),
        ("退钱", "退钱要多久", "similar", "product-refund"),  # similar question
        ("能开", "能开专票吗", "similar", "product-invoice"),
        ("tk", "退款多久到账", "title", "product-refund"),  # pinyin initials
        ("tkdj", "退款多久到账", "title", "product-refund"),
        ("fp", "发票怎么开", "similar", "product-invoice"),  # initials of a word inside
        ("tuik", "退款多久到账", "title", "product-refund"),  # full pinyin
        ("退k", "退款多久到账", "title", "product-refund"),  # mixed input
        ("發票", "发票怎么开", "similar", "product-invoice"),  # traditional characters
        ("ＴＫ", "退款多久到账", "title", "product-refund"),  # full-width letters
        ("发票", "如何开具发票", "title", "product-invoice"),  # a word start inside the title
    ],
)
def test_prefixes_suggest_titles_and_similar_questions(kb, prefix, text, kind, article):
    got = suggester(kb).suggest(prefix)
    assert {"text": text, "kind": kind, "id": article} in got


@BOTH
def test_drafts_are_never_suggested(kb):
    assert "草稿中的发票话术" not in texts(suggester(kb).suggest("草稿"))


@BOTH
def test_whole_prefix_ranks_before_a_word_inside(kb):
    got = texts(suggester(kb).suggest("发票"))
    assert got.index("发票怎么开") < got.index("如何开具发票")


@BOTH
def test_frequent_successful_queries_are_suggested(kb):
    kb.search("专票抬头怎么写", log=True)  # seen once: not yet frequent
    kb.search("专票怎么开", log=True)
    kb.search("专票怎么开", log=True)
    kb.search("量子纠缠", log=True)  # found nothing: never suggested
    kb.search("量子纠缠", log=True)
    kb.flush_search_log()
    s = suggester(kb)
    s.refresh()
    assert {"text": "专票怎么开", "kind": "query"} in s.suggest("专票")
    assert "专票抬头怎么写" not in texts(s.suggest("专票"))
    assert s.suggest("量子") == []
    assert "专票怎么开" in texts(s.suggest("zp"))


@BOTH
def test_new_articles_show_up_after_a_change(kb, monkeypatch):
    s = suggester(kb)
    assert s.suggest("物流") == []
    monkeypatch.setattr(suggest, "CHECK_EVERY", 0.0)
    monkeypatch.setattr(suggest, "REBUILD_EVERY", 0.0)  # production: at most every 30 s
    kb.save(Article(id="product-wuliu", title="物流查询方法", category="product"))
    deadline = time.monotonic() + 5
    while not s.suggest("物流") and time.monotonic() < deadline:
        time.sleep(0.05)  # rebuilt in the background, the old lists serving meanwhile
    assert texts(s.suggest("wlcx")) == ["物流查询方法"]


@BOTH
def test_empty_and_punctuation_only_prefixes_suggest_nothing(kb):
    assert suggester(kb).suggest("") == []
    assert suggester(kb).suggest("？！ ") == []


@BOTH
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tuikaun", "退款多久到账"),  # transposed letters in pinyin
        ("fapaio", "发票怎么开"),
        ("kehulaiduojiu", "客户来了多久要回复"),
    ],
)
def test_did_you_mean_finds_the_closest_question(kb, query, expected):
    assert kb.search(query, log=False).total == 0
    assert suggester(kb).did_you_mean(query) == expected


@BOTH
def test_did_you_mean_stays_quiet_when_nothing_is_close(kb):
    assert suggester(kb).did_you_mean("量子纠缠") is None
    assert suggester(kb).did_you_mean("qwertyuiop") is None


def test_suggest_api(client):
    resp = client.get("/api/v1/suggest?q=tk")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] is True
    assert body["suggestions"][0] == {
        "text": "退款多久到账",
        "kind": "title",
        "id": "product-refund",
    }
    assert client.get("/api/v1/suggest?q=").get_json() == {"ok": True, "suggestions": []}
    assert client.get("/api/v1/suggest?q=" + "退" * 60).status_code == 400
    assert client.get("/api/v1/suggest?q=tk&limit=0").status_code == 400


def test_suggest_api_needs_a_login(anon):
    resp = anon.get("/api/v1/suggest?q=tk")
    assert resp.status_code == 401


def test_search_api_offers_did_you_mean_when_nothing_is_found(app, client):
    suggester(app.extensions["kb"]).refresh()  # built in the background in production
    body = client.get("/api/v1/search?q=kehulaiduojiu").get_json()
    assert body["total"] == 0 and body["did_you_mean"] == "客户来了多久要回复"
    assert "did_you_mean" not in client.get("/api/v1/search?q=量子纠缠").get_json()
    assert "did_you_mean" not in client.get("/api/v1/search?q=退款").get_json()


def test_search_page_offers_did_you_mean_as_a_link(app, client):
    suggester(app.extensions["kb"]).refresh()
    page = client.get("/?q=kehulaiduojiu").get_data(as_text=True)
    assert "您是不是要找「" in page
    assert 'href="/?q=%E5%AE%A2' in page and "客户来了多久要回复</a>" in page
