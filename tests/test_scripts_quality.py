"""Quality gate: every shipped standard script passes the coaching checker clean.

A standard script that says 大概 or asks the customer to wait without an apology is
a bug in the script library, not in the agent who copies it.
"""

import pytest

from coach.checker import Checker
from scripts_lib import load_library
from scripts_lib.render import render, to_plain

LIBRARY = load_library()
CONTEXT = [
    {"role": "customer", "text": "你好，在吗"},
    {"role": "agent", "text": "您好，很高兴为您服务，请问有什么可以帮您？"},
    {"role": "customer", "text": "我想问一下我的订单"},
]


# What an agent fills in; 预计 needs a definite time to be the standard wording.
SAMPLE_VALUES = {"预计时间": "3个工作日", "排队人数": "3", "客户称呼": "王女士", "订单号": "A1001"}


@pytest.fixture(scope="module")
def checker():
    return Checker()


@pytest.mark.parametrize("script", LIBRARY.all(), ids=lambda s: s.id)
def test_script_passes_the_checker(checker, script):
    values = {name: SAMPLE_VALUES.get(name, "示例") for name in script.placeholders}
    text = to_plain(render(script, values))
    findings = checker.check_reply(text, CONTEXT)
    assert findings == [], [(f["rule"], f["match"]) for f in findings]
