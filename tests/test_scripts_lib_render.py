"""Rendering scripts: placeholders, missing-value prompts, escaping for HTML and copy."""

from __future__ import annotations

import pytest

from scripts_lib import Script, load_library, render, to_html, to_plain

ORDER = Script(
    id="t-1",
    scenario="test",
    title="测试",
    text="{客户称呼}您好，您的订单{订单号}已发货，快递单号{快递单号}。",
    shortcut="/t",
    channels=("online",),
    prompts={
        "客户称呼": "请输入客户称呼",
        "订单号": "请输入客户的订单号",
        "快递单号": "请输入快递单号",
    },
)


def test_all_values_filled():
    out = render(ORDER, {"客户称呼": "王先生", "订单号": "A1001", "快递单号": "SF123"})
    assert out.text == "王先生您好，您的订单A1001已发货，快递单号SF123。"
    assert out.missing == [] and out.complete
    assert [p.kind for p in out.parts].count("value") == 3


def test_missing_values_leave_marked_prompts():
    out = render(ORDER, {"客户称呼": "王先生", "订单号": "  ", "快递单号": None})
    assert (
        out.text == "王先生您好，您的订单【请输入客户的订单号】已发货，快递单号【请输入快递单号】。"
    )
    assert out.missing == ["订单号", "快递单号"] and not out.complete


def test_no_values_at_all_never_raises():
    out = render(ORDER)
    assert out.missing == ["客户称呼", "订单号", "快递单号"]
    assert out.text.startswith("【请输入客户称呼】您好")


def test_extra_values_are_ignored():
    out = render(ORDER, {"客户称呼": "李女士", "订单号": "1", "快递单号": "2", "多余": "x"})
    assert out.complete and "x" not in out.text


def test_plain_text_without_prompts_uses_default_prompt():
    out = render("您好，{客户称呼}，{门店地址}欢迎您。", {"客户称呼": "张先生"})
    assert out.text == "您好，张先生，【请输入门店地址】欢迎您。"
    assert out.missing == ["门店地址"]


def test_explicit_prompts_override():
    out = render(ORDER, {}, prompts={"订单号": "订单号在订单详情页"})
    assert "【订单号在订单详情页】" in out.text


def test_repeated_placeholder_filled_everywhere_and_missing_once():
    out = render("{名}与{名}，{号}与{号}", {"名": "甲"})
    assert out.text == "甲与甲，【请输入号】与【请输入号】"
    assert out.missing == ["号"]


def test_values_are_inserted_literally():
    out = render(ORDER, {"客户称呼": "{订单号}", "订单号": "{{x}}", "快递单号": "【注意】"})
    assert out.text == "{订单号}您好，您的订单{{x}}已发货，快递单号【注意】。"
    assert out.complete


def test_non_string_values():
    assert render("共{件数}件", {"件数": 3}).text == "共3件"
    assert render("金额{金额}元", {"金额": 0}).text == "金额0元"


@pytest.mark.parametrize(
    "text",
    ["{", "}", "}}", "{{", "{未闭合", "未打开}", "{ 订单号 }", "{1}", "{}", "a{b", "{{{", "}{"],
)
def test_stray_braces_stay_as_text(text):
    out = render(text, {"订单号": "A1", "1": "x"})
    assert out.text == text and out.missing == []


def test_stray_brace_beside_a_placeholder():
    out = render("{{订单号}} {未闭合 {订单号}", {"订单号": "A1"})
    assert out.text == "{A1} {未闭合 A1"


def test_html_escapes_values_and_text():
    out = render(
        "<b>{客户称呼}</b> & {订单号}",
        {"客户称呼": '<script>alert("x")</script>'},
        prompts={"订单号": "请输入<订单号>"},
    )
    html = to_html(out)
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;" in html and " &amp; " in html
    assert (
        '<span class="ph-missing" data-placeholder="订单号">【请输入&lt;订单号&gt;】</span>' in html
    )


def test_html_marks_values_on_request():
    html = to_html(render("您好{客户称呼}", {"客户称呼": "王先生"}), mark_values=True)
    assert html == '您好<span class="ph-value" data-placeholder="客户称呼">王先生</span>'


def test_plain_copy_strips_unsafe_characters():
    value = "王先生\u202e\x07\r\n第二行\t制表"
    out = render("{客户称呼}您好", {"客户称呼": value})
    assert to_plain(out) == "王先生\n第二行\t制表您好"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("prompt", "订单【请输入客户的订单号】已发货"),
        ("placeholder", "订单{订单号}已发货"),
        ("blank", "订单已发货"),
    ],
)
def test_plain_copy_missing_modes(mode, expected):
    out = render("订单{订单号}已发货", prompts={"订单号": "请输入客户的订单号"})
    assert to_plain(out, missing=mode) == expected


def test_to_dict_api_shape():
    data = render(ORDER, {"客户称呼": "王先生"}).to_dict()
    assert set(data) == {"text", "missing", "parts"}
    assert data["missing"] == ["订单号", "快递单号"]
    assert data["parts"][0] == {"kind": "value", "text": "王先生", "name": "客户称呼"}


def test_render_shipped_script_by_id():
    lib = load_library()
    out = lib.render("hold-check-order-1", {"客户称呼": "王先生", "订单号": "A1001"})
    assert out.complete and "A1001" in out.text and "王先生" in out.text
    missing = lib.render("hold-check-order-1", {})
    assert "【请输入客户的订单号】" in missing.text
    assert lib.get("hold-check-order-1").to_dict()["placeholders"][1] == {
        "name": "订单号",
        "prompt": "请输入客户的订单号",
    }
