"""The README says what the code does: API keys, pages per role, commands, sample data.

A newcomer reads the README first; these tests fail when it drifts from the code.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROLE_USERS, signed_in

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SAMPLE = ROOT / "coach" / "samples" / "demo_chats.jsonl"


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else len(README)]


# -- documented response shapes ---------------------------------------------------------


def documented_shape(marker: str) -> dict:
    """The `{...}` after the first → following `marker` in the JSON API section, as a
    tree: {key: subtree or None}; a key written "key"? is optional (kept as "key?")."""
    text = section("JSON API")
    at = text.index(marker)
    arrow = text.index("→", at)
    start = text.index("`{", arrow) + 1
    end = text.index("`", start)
    shape = text[start:end]
    as_json = re.sub(r'"(\w+)"(\?)?(?=[,}\]])', lambda m: f'"{m[1]}{m[2] or ""}": null', shape)
    as_json = re.sub(r'"(\w+)"(\?)?:', lambda m: f'"{m[1]}{m[2] or ""}":', as_json)
    return json.loads(as_json)


def compare(doc, real, where: str, problems: list[str]) -> None:
    if doc is None:
        return
    if isinstance(doc, list):
        if not isinstance(real, list):
            problems.append(f"{where}: documented a list, got {type(real).__name__}")
        elif doc and real:
            compare(doc[0], real[0], where + "[0]", problems)
        return
    if not isinstance(real, dict):
        problems.append(f"{where}: documented an object, got {type(real).__name__}")
        return
    keys = {k.rstrip("?"): v for k, v in doc.items()}
    required = {k for k in doc if not k.endswith("?")}
    for key in sorted(required - set(real)):
        problems.append(f"{where}.{key}: documented, not returned")
    for key in sorted(set(real) - set(keys)):
        problems.append(f"{where}.{key}: returned, not documented")
    for key, sub in keys.items():
        if key in real:
            compare(sub, real[key], f"{where}.{key}", problems)


def assert_documented(marker: str, response) -> None:
    assert response.status_code < 300, response.get_data(as_text=True)
    problems: list[str] = []
    compare(documented_shape(marker), response.get_json(), marker, problems)
    assert problems == []


CHAT = {
    "id": "readme-1",
    "agent": "agent1",
    "turns": [
        {"role": "customer", "text": "你好，发票怎么开"},
        {"role": "agent", "text": "哦"},
        {"role": "agent", "text": "这个我也不清楚，差不多吧"},
    ],
}


@pytest.fixture
def as_role(app):
    return {role: signed_in(app, name) for role, name in ROLE_USERS.items()}


def test_documented_api_keys_match_real_responses(as_role):
    agent, trainer, sup = as_role["agent"], as_role["trainer"], as_role["supervisor"]
    assert_documented("`GET /api/v1/search?", agent.get("/api/v1/search?q=发票怎么开"))
    assert_documented("`GET /api/v1/search?", agent.get("/api/v1/search?q=zzzzqqq"))
    assert_documented("`GET /api/v1/articles/<id>`", agent.get("/api/v1/articles/product-invoice"))
    put = trainer.put(
        "/api/v1/articles/product-readme",
        json={"title": "说明书里的文章", "category": "product", "body": "正文"},
    )
    assert_documented("`PUT /api/v1/articles/<id>`", put)
    assert_documented(
        "`POST /api/v1/render`", trainer.post("/api/v1/render", json={"body": "# 标题"})
    )
    assert_documented("`GET /api/v1/suggest?", agent.get("/api/v1/suggest?q=fp"))
    pin = trainer.post("/api/v1/pins", json={"query": "开票", "article_id": "product-invoice"})
    assert pin.status_code == 201 and set(pin.get_json()) == {"ok", "pin"}
    assert_documented("`GET /api/v1/pins`", trainer.get("/api/v1/pins"))

    scripts = agent.get("/api/v1/scripts")
    assert_documented("`GET /api/v1/scripts?", scripts)
    sid = scripts.get_json()["scripts"][0]["id"]
    assert set(agent.get(f"/api/v1/scripts/{sid}").get_json()) == {"ok", "script"}
    render = agent.post(f"/api/v1/scripts/{sid}/render", json={"values": {}})
    assert_documented("`POST /api/v1/scripts/<id>/render`", render)
    assert set(agent.get("/api/v1/my/scripts").get_json()) == {"ok", "scripts"}
    assert_documented("`GET /api/v1/scripts/usage?", sup.get("/api/v1/scripts/usage"))

    reply = agent.post("/api/v1/coach/check-reply", json={"text": "这个差不多吧，我也不清楚哦"})
    assert reply.get_json()["findings"], "the documented finding shape needs a finding"
    assert_documented("`POST /api/v1/coach/check-reply`", reply)
    assert_documented("`POST /api/v1/coach/check`", sup.post("/api/v1/coach/check", json=CHAT))

    posted = sup.post("/api/v1/audits", json={"name": "说明书", "conversations": [CHAT]})
    assert posted.status_code == 202
    assert_documented("`POST /api/v1/audits`", posted)
    run_id = posted.get_json()["run_id"]
    for _ in range(300):  # checked by the app's background worker
        run = sup.get(f"/api/v1/audits/{run_id}")
        if run.get_json()["run"]["status"] == "done":
            break
        time.sleep(0.1)
    assert run.get_json()["items"], run.get_json()
    assert_documented("`GET /api/v1/audits/<id>?", run)
    item_id = run.get_json()["items"][0]["id"]
    appeal = agent.post(
        f"/api/v1/audits/items/{item_id}/appeals", json={"finding": 0, "reason": "客户已离线"}
    )
    assert appeal.status_code == 201 and set(appeal.get_json()) == {"ok", "appeal_id"}
    decided = sup.post(
        f"/api/v1/appeals/{appeal.get_json()['appeal_id']}",
        json={"decision": "reject", "note": "离线前应先结束语"},
    )
    assert_documented("`POST /api/v1/appeals/<id>`", decided)
    assert_documented("`GET /api/v1/my/audits?", agent.get("/api/v1/my/audits"))
    proposed = trainer.get("/api/v1/article-id?title=以旧换新怎么办理&category=product")
    assert_documented("`GET /api/v1/article-id?", proposed)
    assert_documented("`GET /healthz`", agent.get("/healthz"))


# -- pages per role ---------------------------------------------------------------------


def role_table() -> list[tuple[list[str], dict[str, bool]]]:
    text = section("The first ten minutes")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`/" in line]
    header = [c.strip() for c in text.split("| page | path |", 1)[1].splitlines()[0].split("|")]
    roles = [c for c in header if c]
    table = []
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        paths = re.findall(r"`(/[^`]*)`", cells[1])
        table.append((paths, dict(zip(roles, (c == "✓" for c in cells[2:]), strict=True))))
    return table


def concrete(path: str, script_id: str) -> str:
    if path.startswith("/scripts/"):
        return path.replace("<id>", script_id)
    return path.replace("<id>", "product-invoice")


def test_pages_per_role_table_matches_the_code(as_role):
    table = role_table()
    assert len(table) >= 6
    script_id = as_role["agent"].get("/api/v1/scripts").get_json()["scripts"][0]["id"]
    wrong = []
    for paths, allowed in table:
        for path in paths:
            url = concrete(path, script_id)
            for role, client in as_role.items():
                status = client.get(url).status_code
                if (status == 200) != allowed[role] or status not in (200, 403):
                    wrong.append(f"{url} as {role}: {status}, README says {allowed[role]}")
    assert wrong == [], "\n".join(wrong)


def test_navigation_links_only_pages_the_role_may_open(as_role):
    for role, client in as_role.items():
        page = client.get("/").get_data(as_text=True)
        nav = page.split("<nav>", 1)[1].split("</nav>", 1)[0]
        hrefs = set(re.findall(r'href="(/[^"]*)"', nav))
        assert hrefs, role
        for href in hrefs:
            assert client.get(href).status_code == 200, (role, href)


# -- commands and the sample ------------------------------------------------------------


def documented_commands() -> list[list[str]]:
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("kbcoach "):
                cmds.append(line)
    for inline in re.findall(r"`(kbcoach [^`]+)`", README):
        cmds.append(inline)
    return [shlex.split(c.replace("…", "x").replace("|", " ")) for c in cmds]


def test_every_documented_command_exists():
    from cli import cli

    missing = []
    for argv in documented_commands():
        cmd, words = cli, argv[1:]
        while words and hasattr(cmd, "commands"):
            group_opts = {o: p for p in cmd.params for o in p.opts}
            if words[0] in group_opts:  # --instance DIR before the command
                words = words[1 if group_opts[words[0]].is_flag else 2 :]
            elif words[0] in cmd.commands:
                cmd, words = cmd.commands[words[0]], words[1:]
            else:
                break
        if cmd is cli:
            missing.append(" ".join(argv))
            continue
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        options |= {o for p in cmd.params for o in getattr(p, "secondary_opts", [])}
        for word in words:
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and flag not in options:
                missing.append(f"{' '.join(argv)}: {flag}")
    assert len(documented_commands()) > 20
    assert missing == [], "\n".join(missing)


def test_the_tour_sample_audits_for_the_tour_agents(tmp_path):
    from cli import cli

    assert str(SAMPLE.relative_to(ROOT)) in section("The first ten minutes")
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    agents = {r["agent"] for r in records}
    tour = section("The first ten minutes")
    for agent in agents:
        assert f"kbcoach user add {agent}" in tour
    result = CliRunner().invoke(
        cli, ["--instance", str(tmp_path / "inst"), "check", str(SAMPLE), "--format", "json"]
    )
    assert result.exit_code == 1, result.output  # findings
    report = json.loads(result.output)
    assert report["summary"]["errors"] == 0 and report["summary"]["conversations"] == len(records)
    rules = {f["rule"] for c in report["conversations"] for f in c["findings"]}
    # the sample shows the handbook's main kinds of finding
    assert {"vague-hedge", "filler-bare", "no-greeting", "wait-no-apology"} <= rules
    scores = {c["score"] for c in report["conversations"]}
    assert 100 in scores and min(scores) < 80
