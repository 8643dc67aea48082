"""Production serving: gunicorn workers share one database and index."""

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request

from .conftest import FIXTURES, KBCOACH, REPO, free_port, run_cli, wait_http


def get_json(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_prod_workers_serve_and_see_edits_and_stop_gracefully(tmp_path):
    inst = tmp_path / "instance"
    run_cli("import", str(FIXTURES / "articles"), instance=inst, check=True)
    run_cli(
        "user",
        "add",
        "bot",
        "--role",
        "agent",
        "--password",
        "bot-password-1",
        instance=inst,
        check=True,
    )
    token = run_cli("token", "create", "bot", instance=inst, check=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [
            *KBCOACH,
            "--instance",
            str(inst),
            "serve",
            "--prod",
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc)
        url = base + "/api/v1/search?q=" + urllib.parse.quote("积分兑换")
        assert get_json(url, token)["hits"] == []
        from kb.models import Article
        from kb.service import KnowledgeBase

        kb = KnowledgeBase(inst)
        kb.save(Article(id="product-points", title="积分怎么兑换", category="product"))
        kb.close()
        deadline = time.monotonic() + 2.0
        seen = []
        while time.monotonic() < deadline and len(seen) < 10:
            hits = get_json(url, token)["hits"]
            if hits:
                seen.append(hits[0]["id"])
            else:
                seen.clear()
            time.sleep(0.05)
        # ten consecutive requests (spread over both workers) all see the edit within 2 s
        assert seen == ["product-points"] * 10
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    log_lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert any(
        r["path"] == "/api/v1/search" and r["status"] == 200 and r["user"] == "bot"
        for r in log_lines
    )
