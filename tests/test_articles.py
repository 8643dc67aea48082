"""Markdown articles: parsing, validation errors located by file and line, export."""

from pathlib import Path

import pytest

from kb.articles import dump_article, load_dir, parse_article
from kb.errors import ValidationError
from kb.models import CATEGORIES

REPO = Path(__file__).resolve().parents[1]

GOOD = """---
id: product-x
title: 标题
category: product
tags: [a, b]
similar:
  - 问法一
review_by: 2027-01-31
---
正文
"""


def test_parse_valid_article():
    art = parse_article(GOOD, path="x.md")
    assert (art.id, art.title, art.category, art.tags, art.similar) == (
        "product-x",
        "标题",
        "product",
        ["a", "b"],
        ["问法一"],
    )
    assert art.review_by == "2027-01-31" and art.body == "正文" and art.status == "published"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("no front matter", 1, "YAML 头"),
        ("---\nid: a\ntitle: t\n", 1, "结束"),
        ("---\nid: a\ntitle: [unclosed\ncategory: product\n---\n", 4, "YAML 格式错误"),
        ("---\nid: a\ntitle: t\ncategory: shoes\n---\n", 4, "分类"),
        ("---\nid: a\ncategory: product\n---\n", 1, "title"),
        ("---\nid: a\ntitle: t\ncategory: product\nreview_by: soon\n---\n", 5, "review_by"),
        ("---\nid: A B\ntitle: t\ncategory: product\n---\n", 2, "id"),
        ("---\nid: a\ntitle: t\ncategory: product\nauthor: me\n---\n", 5, "未知字段"),
        ("---\nid: a\ntitle: t\ncategory: product\ntags: {x: 1}\n---\n", 5, "tags"),
    ],
)
def test_errors_name_file_and_line(text, line, needle):
    with pytest.raises(ValidationError) as info:
        parse_article(text, path="product/bad.md")
    err = info.value
    assert err.path == "product/bad.md" and err.line == line, str(err)
    assert needle in str(err)
    assert str(err).startswith(f"product/bad.md:{line}: ")


def test_one_broken_file_never_blocks_the_rest(tmp_path):
    (tmp_path / "product").mkdir()
    (tmp_path / "product" / "ok.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "product" / "broken.md").write_text("---\nid: [\n---\n", encoding="utf-8")
    (tmp_path / "product" / "gbk.md").write_bytes(
        "---\nid: g\n".encode("gbk") + "标题".encode("gbk")
    )
    (tmp_path / "product" / "dup.md").write_text(GOOD, encoding="utf-8")
    found, errors = load_dir(tmp_path)
    assert [a.id for a in found] == ["product-x"]
    messages = sorted(str(e) for e in errors)
    assert any(m.startswith("product/broken.md:2:") for m in messages), messages
    assert any("product/gbk.md" in m and "UTF-8" in m for m in messages), messages
    assert any("重复" in m for m in messages), messages


def test_dump_then_parse_round_trips():
    art = parse_article(GOOD, path="x.md")
    again = parse_article(dump_article(art), path="y.md")
    assert again.content_key() == art.content_key()


def test_starter_articles_are_valid_and_cover_every_category():
    found, errors = load_dir(REPO / "articles")
    assert errors == []
    assert len(found) >= 30
    assert {a.category for a in found} == set(CATEGORIES)
    for art in found:
        assert art.similar, f"{art.source} has no similar questions"
        assert Path(art.source).parts[0] == art.category
