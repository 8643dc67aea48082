"""Markdown that python-markdown would spend minutes on renders in time, as plain text.

Found in a walkthrough: 3,000 "[" in an article body took 5 s on every view and 50,000
never finished (a worker lost); dense markup (1 MB of "**a** ") 11 s.
"""

from __future__ import annotations

import time

from kb.render import MAX_MARKS, render_markdown

from .conftest import signed_in

HANG = 10  # seconds: these took minutes or never ended


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def test_unclosed_brackets_render_as_written():
    html, took = timed(render_markdown, "前言\n\n" + "[" * 50_000 + "\n\n**结尾**")
    assert took < HANG
    assert "[" * 1000 in html and "<strong>结尾</strong>" not in html  # the rest stays plain
    assert html.startswith("<p>前言</p>")


def test_dense_markup_is_bounded_and_ordinary_markdown_unchanged():
    body = ("**a** " * 80 + "\n\n") * 2000
    html, took = timed(render_markdown, body)
    assert took < HANG and html.count("<strong>") < MAX_MARKS
    ordinary = "# 标题\n\n见 [发票说明](https://a.cn/x)，**务必**核对。\n\n| 项 | 值 |\n|---|---|\n| a | b |"
    out = render_markdown(ordinary)
    assert (
        '<a href="https://a.cn/x"' in out and "<strong>务必</strong>" in out and "<td>b</td>" in out
    )


def test_plain_fallback_is_escaped_and_sanitised():
    html = render_markdown("<script>alert(1)</script> " + "[x" * 500)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_huge_table_is_bounded():
    body = "| a | b |\n|---|---|\n" + "| x | y |\n" * 40_000
    _, took = timed(render_markdown, body)
    assert took < HANG


def test_article_with_hostile_body_saves_and_previews_in_time(app, users):
    trainer = signed_in(app, users["trainer"])
    body = {"title": "括号", "category": "product", "body": "[" * 50_000, "status": "published"}
    resp, took = timed(trainer.put, "/api/v1/articles/product-brackets", json=body)
    assert resp.status_code == 200 and took < HANG
    resp, took = timed(trainer.post, "/api/v1/render", json={"body": "![" * 20_000})
    assert resp.status_code == 200 and took < HANG
    page, took = timed(trainer.get, "/articles/product-brackets")
    assert page.status_code == 200 and took < HANG
