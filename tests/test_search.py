"""Index and search: ranking, highlights, filters, incremental updates, atomic rebuild."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kb.models import Article
from kb.service import KnowledgeBase

from .conftest import REPO

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def ids(result):
    return [h.id for h in result.hits]


def test_title_and_similar_questions_rank_first(kb):
    assert ids(kb.search("发票怎么开"))[0] == "product-invoice"
    assert ids(kb.search("退钱要多久"))[0] == "product-refund"


def test_highlighted_snippets_use_mark_and_escape_html(kb):
    kb.save(
        Article(
            id="product-xss",
            title="<b>发票</b> 标题",
            category="product",
            body="<script>alert(1)</script> 发票 说明",
        )
    )
    hit = next(h for h in kb.search("发票").hits if h.id == "product-xss")
    assert "<mark>发票</mark>" in hit.title_html and "&lt;b&gt;" in hit.title_html
    assert "<script>" not in hit.snippet and "<mark>发票</mark>" in hit.snippet


@BOTH
def test_filters_by_category_and_tag_and_hides_drafts(kb):
    assert "phrasing-draft" not in ids(kb.search("发票"))
    assert ids(kb.search("发票", category="norm")) == []
    assert ids(kb.search("退款", tag="支付")) == ["product-refund"]
    assert ids(kb.search("发票", status=None, category="phrasing")) == ["phrasing-draft"]


@BOTH
def test_incremental_update_and_delete_are_visible(kb):
    kb.save(Article(id="product-points", title="积分怎么兑换", category="product", body="积分兑换"))
    time.sleep(0.6)  # views refresh at most every 0.5 s
    assert ids(kb.search("积分兑换"))[0] == "product-points"
    kb.delete("product-points")
    time.sleep(0.6)
    assert "product-points" not in ids(kb.search("积分兑换"))


@BOTH
def test_every_query_is_logged(kb):
    kb.search("发票怎么开", via="test")
    kb.flush_search_log()  # buffered off the request path; written every second
    import sqlalchemy as sa

    from storage.schema import search_log as log

    with kb.database.read() as conn:
        row = conn.execute(
            sa.select(log.c.q, log.c.hits, log.c.took_ms, log.c.via).order_by(log.c.id)
        ).all()[-1]
    assert row[0] == "发票怎么开" and row[1] >= 1 and row[2] > 0 and row[3] == "test"


def test_query_without_words_finds_nothing(kb):
    assert kb.search("？？！").hits == []


def test_rebuild_swaps_in_a_fresh_generation(kb):
    before = kb.indexes.current_name()
    stats = kb.rebuild_index()
    assert kb.indexes.current_name() != before and stats["documents"] == 4
    assert ids(kb.search("发票怎么开"))[0] == "product-invoice"
    assert not (kb.indexes.root / before).exists()


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from kb.service import KnowledgeBase
from kb.index import document
from kb.models import Article
kb = KnowledgeBase({inst!r})
def docs():
    for i in range(100000):
        if i == 50:
            print("building", flush=True)
        yield document(Article(id=f"slow-{{i}}", title=f"慢速文章{{i}}", category="product", body="内容"))
        time.sleep(0.01)
kb.indexes.rebuild(docs())
"""


def test_killed_rebuild_leaves_the_old_index_serving(kb):
    served = kb.indexes.current_name()
    code = KILL_SCRIPT.format(repo=str(REPO), inst=str(kb.root))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "building"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert kb.indexes.current_name() == served
    assert any(p.name.startswith("build-") for p in kb.indexes.root.iterdir())
    fresh = KnowledgeBase(kb.root)  # a new process's view
    assert ids(fresh.search("发票怎么开"))[0] == "product-invoice"
    fresh.rebuild_index()  # the next rebuild works and serves
    assert ids(fresh.search("发票怎么开"))[0] == "product-invoice"


def test_updated_article_in_a_tiny_index_is_still_found(tmp_path):
    """Deleted copies count in document frequency; scores must stay positive."""
    base = KnowledgeBase(tmp_path / "tiny")
    base.save(Article(id="only", title="好的文章", category="product", body="正文"))
    base.save(Article(id="only", title="好的文章", category="product", body="正文改过"))
    assert ids(base.search("好的文章")) == ["only"]


def test_character_bigrams_match_differently_segmented_queries(kb):
    from kb.search import Levers

    kb.save(Article(id="product-freight", title="运费险理赔流程", category="product"))
    only = {"synonyms": False, "pinyin": False, "homophones": False, "chars": False}
    kb.engine.levers = Levers(bigrams=True, **only)
    assert "product-freight" in ids(kb.search("运费的保险"))
    kb.engine.levers = Levers(bigrams=False, **only)
    assert "product-freight" not in ids(kb.search("运费的保险"))


def test_highlight_marks_every_occurrence_exactly():
    from kb.search import highlight

    out = highlight("退款退款，重要的事说两遍：退款 <b>", {"退款", "说"})
    assert out == (
        "<mark>退款</mark><mark>退款</mark>，重要的事说两遍：<mark>退款</mark> &lt;b&gt;"
    )
    assert highlight("退貨運費", {"退货", "运费"}) == "<mark>退貨</mark><mark>運費</mark>"


def test_searches_from_many_threads_share_views(kb):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: ids(kb.search(q, log=False)), ["发票怎么开"] * 64))
    assert all(r[0] == "product-invoice" for r in results)
    assert 1 <= len(kb.engine._pool) <= 8


def test_an_index_without_the_character_field_is_rebuilt(tmp_path):
    """An index written before the `chars` field existed is stale: ensure_index
    rebuilds it, and the new field then scores."""
    from whoosh import index as windex

    from kb.index import make_schema

    base = KnowledgeBase(tmp_path / "old")
    base.save(Article(id="hb-raise", title="花呗怎样提升额度", category="product"))
    assert base.indexes.is_current()
    old = make_schema()
    old.remove("chars")
    gen = base.indexes.root / "gen-old"
    gen.mkdir()
    windex.create_in(str(gen), old).close()
    base.indexes._swap_current(gen.name)
    assert not base.indexes.is_current()
    assert base.ensure_index() is not None
    assert base.indexes.is_current()
    assert ids(base.search("花呗额度提高")) == ["hb-raise"]


def test_an_index_analysed_by_other_code_is_rebuilt(tmp_path):
    """Same fields, different analysis (an older ANALYSIS_VERSION or dictionaries):
    the index is stale and ensure_index rebuilds it."""
    base = KnowledgeBase(tmp_path / "inst")
    base.save(Article(id="hb-raise", title="花呗怎样提升额度", category="product"))
    stamp = base.indexes.current_dir() / "ANALYSIS"
    assert base.indexes.is_current()
    stamp.write_text("1-0000000000000000\n", encoding="ascii")
    assert not base.indexes.is_current()
    stamp.unlink()  # an index built before the stamp existed
    assert not base.indexes.is_current()
    assert base.ensure_index() is not None
    assert base.indexes.is_current()
    assert ids(base.search("花呗额度提高")) == ["hb-raise"]


def test_snippets_are_plain_text_without_markdown_marks():
    from kb.search import snippet

    body = "## 补贴\n\n| 品类 | 补贴 |\n| --- | --- |\n| 手机 | 15% |\n\n详见[活动规则](javascript:alert(1))和![图](x.png)"
    text = snippet(body, {"补贴"}, width=200)
    assert "|" not in text and "javascript" not in text and "](" not in text
    assert "品类 <mark>补贴</mark> 手机 15%" in text and "详见活动规则和图" in text
