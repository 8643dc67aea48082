"""Property-based tests: hostile input to the front-matter parser, the query path
and the JSON API never crashes or hangs; it yields a clear error or a result."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.articles import parse_article
from kb.errors import ValidationError
from kb.render import render_markdown

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

yaml_like = st.text(
    alphabet=st.sampled_from(list("abc:-[]{}#'\"\n 　发票\x00\t*&!|>")), max_size=200
)


@SETTINGS
@given(header=yaml_like, body=st.text(max_size=300))
def test_front_matter_parser_never_crashes(header, body):
    text = f"---\n{header}\n---\n{body}"
    try:
        art = parse_article(text, path="fuzz.md")
    except ValidationError as exc:
        assert str(exc).startswith("fuzz.md")
    else:
        assert art.id and art.title


@SETTINGS
@given(st.text(max_size=2000))
def test_markdown_render_never_emits_script(text):
    html = render_markdown(text)
    assert "<script" not in html.lower() and "onerror=" not in html.lower()


@SETTINGS
@given(q=st.text(min_size=1, max_size=300))
def test_search_any_query(kb, q):
    result = kb.search(q, log=False)
    assert result.took_ms >= 0
    for hit in result.hits:
        assert "<script" not in hit.snippet


def nested(depth: int):
    value: object = "发票"
    for _ in range(depth):
        value = {"q": [value]}
    return value


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["q", "category", "tag", "limit", "x"]), st.text(max_size=80), max_size=5
    )
)
def test_search_api_any_parameters(client, params):
    resp = client.get("/api/v1/search", query_string=params)
    assert resp.status_code in (200, 400)
    data = resp.get_json()
    assert data["ok"] is (resp.status_code == 200)
    if resp.status_code == 400:
        assert data["error"] and data["status"] == 400


def test_huge_and_hostile_query_strings(client):
    for q in [
        "\x00" * 100,
        "发" * 500,
        "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
        json.dumps(nested(200))[:500],
    ]:
        resp = client.get("/api/v1/search", query_string={"q": q})
        assert resp.status_code in (200, 400)
    resp = client.get("/api/v1/search", query_string={"q": "发" * 5000})
    assert resp.status_code == 400 and "过长" in resp.get_json()["error"]
