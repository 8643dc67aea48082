"""JSON API and pages through Flask's test client (real SQLite and whoosh)."""

import pytest

# the API on both stores: the embedded SQLite and a shared PostgreSQL
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def test_search_api_shape(client):
    resp = client.get("/api/v1/search?q=发票怎么开&limit=5")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["ok"] is True and isinstance(data["took_ms"], float)
    hit = data["hits"][0]
    assert set(hit) >= {"id", "title", "category", "snippet", "score", "url"}
    assert hit["id"] == "product-invoice"
    # the hit URL names the search and the position: opening it is recorded (内容缺口)
    assert (
        hit["url"]
        == "/articles/product-invoice?q=%E5%8F%91%E7%A5%A8%E6%80%8E%E4%B9%88%E5%BC%80&pos=1"
    )


def test_search_api_filters(client):
    data = client.get("/api/v1/search?q=发票&category=norm").get_json()
    assert data["hits"] == []
    data = client.get("/api/v1/search?q=退款&tag=支付").get_json()
    assert [h["id"] for h in data["hits"]] == ["product-refund"]


def test_article_api_renders_sanitised_html_and_wordings(client, kb):
    from kb.models import Article

    kb.save(
        Article(
            id="product-evil",
            title="恶意",
            category="product",
            body='<script>alert(1)</script><img src=x onerror="alert(2)">\n\n> 您好 {客户称呼}',
        )
    )
    art = client.get("/api/v1/articles/product-evil").get_json()["article"]
    assert "<script" not in art["html"] and "onerror" not in art["html"]
    assert art["wordings"] == ["您好 {客户称呼}"] and art["placeholders"] == ["客户称呼"]
    assert art["version"] == 1


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/api/v1/search", 400),
        ("get", "/api/v1/search?q=x&limit=0", 400),
        ("get", "/api/v1/search?q=x&limit=abc", 400),
        ("get", "/api/v1/search?q=x&category=shoes", 400),
        ("get", "/api/v1/search?q=" + "长" * 600, 400),
        ("get", "/api/v1/articles/nope", 404),
        ("get", "/api/v1/nothing-here", 404),
        ("post", "/api/v1/search?q=x", 405),
        ("delete", "/api/v1/articles/product-invoice", 405),
    ],
)
def test_every_api_error_has_one_shape(client, method, url, status):
    resp = getattr(client, method)(url)
    assert resp.status_code == status
    data = resp.get_json()
    assert set(data) == {"ok", "error", "status"}
    assert data["ok"] is False and data["status"] == status and data["error"]


def test_internal_errors_use_the_same_shape(app):
    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("boom")

    resp = app.test_client().get("/api/v1/boom")
    assert resp.status_code == 500
    assert resp.get_json() == {"ok": False, "error": "服务器内部错误", "status": 500}


def test_pages_render_without_javascript(client):
    page = client.get("/?q=发票怎么开").get_data(as_text=True)
    assert "<mark>发票</mark>" in page and "product-invoice" in page
    art = client.get("/articles/product-invoice").get_data(as_text=True)
    assert "如何开具发票" in art and "修订历史" in art and "复制" in art
    missing = client.get("/articles/nope", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "不存在" in missing.get_data(as_text=True)
