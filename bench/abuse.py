"""Hostile inputs beside ordinary ones of the same size, in one run.

    python bench/abuse.py [--timeout 60] [--repeat 3] [--quick]

Each row times one hostile input of the largest size the service accepts and an
ordinary input of the same size through the same path (the check-reply API, an
upload and its audit, the run page, a rule-pack save), and prints the ratio. The
target is that no hostile input costs more than 3x its ordinary twin. Every
measurement runs in a forked child with a time limit, so an input that still hangs is
reported as "> limit" instead of stalling the bench. Times are medians of --repeat.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ORDINARY_LINES = [
    "您好，很高兴为您服务，请问有什么可以帮您？",
    "不好意思让您久等了，您的订单已经从北京发出，预计3月5日送达。",
    "可以开具电子发票，下单后在订单详情里申请即可。",
    "质量问题的退货运费由我们承担，您放心。",
    "退款会在1到3个工作日内原路退回，请您留意账户。",
    "请问还有其他可以帮您的吗？感谢您的咨询，祝您生活愉快！",
]


def ordinary_text(chars: int) -> str:
    """Ordinary agent replies, cut to exactly `chars` characters."""
    block = "".join(ORDINARY_LINES)
    return (block * (chars // len(block) + 1))[:chars]


_AFTER_FORK: list[Callable[[], None]] = []


def _child(fn: Callable[[], object], conn) -> None:
    for hook in _AFTER_FORK:
        hook()  # a forked child opens its own database connections
    t0 = time.perf_counter()
    try:
        fn()
        conn.send(time.perf_counter() - t0)
    except BaseException as exc:  # report, do not hang the parent
        conn.send(f"{type(exc).__name__}: {exc}"[:200])


def timed(fn: Callable[[], object], limit: float, repeat: int) -> float | str:
    """Median seconds of `fn` run in forked children; '> limit' or an error text."""
    ctx = mp.get_context("fork")
    times = []
    for _ in range(repeat):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(fn, child))
        proc.start()
        if not parent.poll(limit):
            proc.kill()
            proc.join()
            return f"> {limit:.0f} s"
        got = parent.recv()
        proc.join()
        if isinstance(got, str):
            return got
        times.append(got)
    return statistics.median(times)


def _token(page: str) -> str:
    """The CSRF token of a page's form."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Site:
    """A throwaway instance with a supervisor and an agent, served by the test client."""

    def __init__(self, root: Path):
        from kb.accounts import Accounts
        from kb.service import KnowledgeBase
        from web import create_app

        self.root = root
        inst = root / "instance"
        kb = KnowledgeBase(inst)
        accounts = Accounts(kb.store)
        for name, role in (("sup", "supervisor"), ("agent1", "agent")):
            accounts.add(name, "abuse-bench-pw", [role])
        kb.close()
        self.app = create_app({"INSTANCE": str(inst), "TESTING": True})
        _AFTER_FORK.append(self.app.extensions["kb"].close)
        self.sup = self._client("sup")
        self.agent = self._client("agent1")

    def _client(self, name: str):
        c = self.app.test_client()
        page = c.get("/login").get_data(as_text=True)
        resp = c.post(
            "/login",
            data={"username": name, "password": "abuse-bench-pw", "csrf_token": _token(page)},
        )
        assert resp.status_code == 302, f"login {name}: {resp.status_code}"
        page = c.get("/").get_data(as_text=True)
        meta = page.split('name="csrf-token" content="', 1)
        if len(meta) > 1:
            c.environ_base["HTTP_X_CSRFTOKEN"] = meta[1].split('"', 1)[0]
        return c

    def check_reply(self, text: str) -> None:
        resp = self.agent.post("/api/v1/coach/check-reply", json={"text": text})
        assert resp.status_code in (200, 413), resp.status_code

    def upload_and_wait(self, name: str, data: bytes) -> int:
        """Upload one file to 会话质检 and wait until its run is no longer running."""
        resp = self.sup.post(
            "/audits", data={"files": (io.BytesIO(data), name)}, content_type="multipart/form-data"
        )
        if resp.status_code != 302:
            return -resp.status_code
        run_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        while True:
            run = self.sup.get(f"/api/v1/audits/{run_id}").get_json()["run"]
            if run["status"] not in ("queued", "running"):
                return run_id
            time.sleep(0.05)

    def page_bytes(self, run_id: int) -> int:
        return len(self.sup.get(f"/audits/{run_id}").get_data())

    def save_rules(self, text: str) -> int:
        page = self.sup.get("/rules").get_data(as_text=True)
        form = {"yaml": text, "csrf_token": _token(page), "note": "bench"}
        resp = self.sup.post("/rules", data=form)
        return resp.status_code


def chat_log(turns: int, agent_text: str) -> bytes:
    """One JSONL conversation of `turns` turns, customer and agent in turn."""
    rec = {
        "id": "long",
        "agent": "agent1",
        "turns": [
            {
                "role": "customer" if i % 2 == 0 else "agent",
                "text": "在吗" if i % 2 == 0 else agent_text,
            }
            for i in range(turns)
        ],
    }
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode()


def many_chats(total_bytes: int) -> bytes:
    """Ordinary 12-turn conversations, one per line, up to `total_bytes`."""
    out, n = [], 0
    size = 0
    while size < total_bytes:
        turns = []
        for i in range(12):
            role = "customer" if i % 2 == 0 else "agent"
            text = "我的快递到哪了" if role == "customer" else ORDINARY_LINES[(n + i) % 6]
            turns.append({"role": role, "text": text})
        line = json.dumps({"id": f"c{n}", "agent": "agent1", "turns": turns}, ensure_ascii=False)
        out.append(line)
        size += len(line.encode()) + 1
        n += 1
    return ("\n".join(out) + "\n").encode()


BOMB = "\n".join(
    ["definitions:", "  a: &a [x, x, x, x, x, x, x, x, x]"]
    + [
        f"  {b}: &{b} [{', '.join(['*' + a] * 9)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    + ["disable: [slow-greeting]", ""]
)


def ordinary_pack(size: int) -> str:
    """A valid overlay of about `size` bytes (comments pad it)."""
    text = "disable: [slow-greeting]\n"
    line = "# 团队说明：本覆盖层停用首次响应慢，其余规则沿用默认规则包。\n"
    while len(text.encode()) + len(line.encode()) <= size:
        text += line
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=60, help="time limit per measurement (s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller uploads (for a smoke run)")
    args = ap.parse_args()

    from web import coach as web_coach

    chars = getattr(web_coach, "MAX_REPLY_CHARS", 5000)
    site = Site(Path(tempfile.mkdtemp(prefix="kbcoach-abuse-")))
    site.check_reply("预热")  # load the rule pack and the segmenter before forking

    # (label, size, hostile, ordinary[, setup run in this process before the row])
    rows: list[tuple] = []

    def reply(label: str, hostile: str) -> None:
        hostile = (hostile * (chars // len(hostile) + 1))[:chars]
        ordinary = ordinary_text(chars)
        rows.append(
            (
                f"check-reply: {label}",
                f"{chars} chars",
                lambda: site.check_reply(hostile),
                lambda: site.check_reply(ordinary),
            )
        )

    reply("slot phrase 你找售后", "你找售后")
    reply("one character 我", "我")
    reply("filler 哦", "哦")
    reply("hedges 差不多", "差不多，")
    reply("hedges 大概吧 可能", "大概吧可能")

    turns = 4000 if args.quick else 40000
    long_log = chat_log(turns, "大概吧")
    many_long = many_chats(len(long_log))
    rows.append(
        (
            f"upload+audit: one chat of {turns} turns",
            f"{len(long_log) / 1e6:.1f} MB",
            lambda: site.upload_and_wait("long.jsonl", long_log),
            lambda: site.upload_and_wait("many.jsonl", many_long),
        )
    )
    from coach.limits import MAX_TURNS

    hedges = chat_log(MAX_TURNS, "这个差不多吧，大概可能明天到，我也不清楚哦")
    plain = chat_log(
        MAX_TURNS, ORDINARY_LINES[1][: len("这个差不多吧，大概可能明天到，我也不清楚哦")]
    )
    rows.append(
        (
            f"upload+audit: one chat of {MAX_TURNS} turns (the limit), hedges",
            f"{len(hedges) / 1e6:.2f} MB",
            lambda: site.upload_and_wait("hedges.jsonl", hedges),
            lambda: site.upload_and_wait("plain.jsonl", plain),
        )
    )
    from kb.render import render_markdown

    prose = ordinary_text(50_000)
    rows.append(
        (
            "article Markdown: 50,000 unclosed [ (uncached)",
            "50000 chars",
            lambda: render_markdown("[" * 50_000 + " "),
            lambda: render_markdown(prose + " "),
        )
    )
    dense = "**a** " * 160_000
    prose_1mb = ordinary_text(len(dense))
    rows.append(
        (
            "article Markdown: 1 MB of **a** vs 1 MB of prose",
            f"{len(dense)} chars",
            lambda: render_markdown(dense + " "),
            lambda: render_markdown(prose_1mb + " "),
        )
    )
    lines = 40000 if args.quick else 400000
    broken = b"{broken\n" * lines
    many_broken = many_chats(len(broken))
    # the pages are timed on runs made once, here, outside the timed part
    bad_run = site.upload_and_wait("broken.jsonl", broken)
    good_run = site.upload_and_wait("many.jsonl", many_chats(len(broken)))
    rows.append(
        (
            f"upload: {lines} broken JSONL lines",
            f"{len(broken) / 1e6:.1f} MB",
            lambda: site.upload_and_wait("broken.jsonl", broken),
            lambda: site.upload_and_wait("many.jsonl", many_broken),
        )
    )
    rows.append(
        (
            f"run page of that upload ({site.page_bytes(bad_run) // 1024} KB vs "
            f"{site.page_bytes(good_run) // 1024} KB)",
            "",
            lambda: site.page_bytes(bad_run),
            lambda: site.page_bytes(good_run),
        )
    )
    status = site.save_rules(BOMB)
    rows.append(
        (
            f"rule pack save after an anchor bomb (bomb save -> {status})",
            f"{len(BOMB)} B",
            lambda: site.save_rules(BOMB + "# 再改一处\n"),
            lambda: site.save_rules(ordinary_pack(len(BOMB)) + "# 再改一处\n"),
        )
    )
    slots = "我 … 我 … 我 … 我 … 我 … 我 … 谢谢"
    overlay = (
        "rules:\n  - id: team-me\n    category: improper\n    check: token\n"
        "    level: warning\n    weight: 2\n    suggestion: 多说“您”\n"
        f'    message: 自我中心\n    words: ["{slots}"]\n'
        '    examples:\n      must: ["我我我我我我谢谢"]\n      must_not: ["您好"]\n'
    )
    status = site.save_rules(overlay)
    rows.append(
        (
            f"rule pack save with a 7-slot overlay pattern (-> {status})",
            f"{len(overlay)} B",
            lambda: site.save_rules(overlay + "# 再改一处\n"),
            lambda: site.save_rules(ordinary_pack(len(overlay.encode())) + "# 再改一处\n"),
        )
    )
    me = "我" * 60
    rows.append(
        (
            "check-reply after that overlay: 我 x 60",
            "60 chars",
            lambda: site.check_reply(me),
            lambda: site.check_reply(ordinary_text(60)),
            lambda: (site.save_rules(overlay + "# 本行生效\n"), time.sleep(1.1)),
        )
    )

    print(
        f"== abuse: hostile vs ordinary input of the same size; median of {args.repeat}, "
        f"limit {args.timeout:.0f} s each, {os.cpu_count()} cores =="
    )
    print(f"{'input':<58}{'size':>10}{'hostile':>12}{'ordinary':>12}{'ratio':>8}")
    worst = 0.0
    for label, size, hostile, ordinary, *setup in rows:
        for step in setup:
            step()
        h = timed(hostile, args.timeout, args.repeat)
        o = timed(ordinary, args.timeout, args.repeat)
        if isinstance(h, float) and isinstance(o, float):
            ratio = h / o
            worst = max(worst, ratio)
            cells = f"{h * 1000:>10.0f}ms{o * 1000:>10.0f}ms{ratio:>7.1f}x"
        else:
            worst = float("inf")
            cells = f"{h if isinstance(h, str) else f'{h * 1000:.0f}ms':>12}" + (
                f"{o if isinstance(o, str) else f'{o * 1000:.0f}ms':>12}{'-':>8}"
            )
        print(f"{label:<58}{size:>10}{cells}", flush=True)
    print(f"worst ratio {worst:.1f}x (target <= 3x)")


if __name__ == "__main__":
    main()
