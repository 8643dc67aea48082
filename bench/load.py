"""Load bench: concurrent search and check-reply clients against `kbcoach serve --prod`
on loopback, while an editor changes articles; prints throughput, latency
percentiles, errors and how long an edit takes to become searchable.

    python bench/load.py [--clients 16] [--seconds 30] [--workers 2] [--threads 2]
                         [--hostile 4] [--nodes 2]

With --hostile N, N more clients send check-reply drafts of the largest allowed size
built to be costly (a repeated slot phrase, "你找售后" x 1250); the same load is run
first without them on the same server, and both tables are printed.

With --nodes 2, the same load (same length, same clients, same editor) runs first on
one node on its embedded SQLite, then on two nodes (each `serve --prod` with its own
instance folder and index) sharing one PostgreSQL started for the run (tests/pg.py):
clients are spread over both nodes, the editor saves through node A's database and
times until node B's search finds the edit.  Both tables are printed.

Bounded in time and count, loopback only.  KBCOACH_LOAD_DEBUG=1 prints every poll of
the editor (client wait and the engine's own took_ms).  Client processes (not threads) so the
load generator itself is not serialised by one GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
KBCOACH = [sys.executable, str(REPO / "cli.py")]

KEYWORDS = [
    "发票怎么开",
    "退款多久到账",
    "退钱",
    "快递到哪了",
    "会员积分",
    "运费险",
    "七天无理由",
    "改地址",
    "保修",
    "开场白",
    "客户要等怎么说",
    "tk",
    "fp",
    "优惠券",
    "价保",
    "安装",
]
REPLIES = [
    "大概三天到吧",
    "稍等",
    "您好，您的订单预计明天18点前送达",
    "哦",
    "这个不归我管",
    "不好意思让您久等了，正在为您查询，请稍等",
    "好的，感谢您的耐心等待，祝您生活愉快，再见！",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(conn, port: int, timeout: float, method: str, path: str, **kw):
    """One request; (status, connection): status 0 and a new connection when it broke."""
    try:
        conn.request(method, path, **kw)
        resp = conn.getresponse()
        resp.read()
        return resp.status, conn
    except OSError:
        conn.close()
        return 0, http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def client(port: int, token: str, deadline: float, seed: int, out: mp.Queue) -> None:
    """One client process: alternates search (3/4) and check-reply (1/4) calls."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    auth = {"Authorization": f"Bearer {token}"}
    rows: list[tuple[str, float, int]] = []
    while time.monotonic() < deadline:
        kind = "search" if rng.random() < 0.75 else "check-reply"
        t0 = time.perf_counter()
        if kind == "search":
            q = urllib.parse.quote(rng.choice(KEYWORDS))
            status, conn = request(conn, port, 10, "GET", f"/api/v1/search?q={q}&limit=10",
                                   headers=auth)  # fmt: skip
        else:
            body = json.dumps({"text": rng.choice(REPLIES)}, ensure_ascii=False).encode()
            headers = {**auth, "Content-Type": "application/json"}
            status, conn = request(conn, port, 10, "POST", "/api/v1/coach/check-reply",
                                   body=body, headers=headers)  # fmt: skip
        rows.append((kind, (time.perf_counter() - t0) * 1000, status))
    out.put(rows)


HOSTILE = "你找售后" * 1250  # the improper-attitude slot phrase, 5,000 characters


def hostile_client(port: int, token: str, deadline: float, out: mp.Queue) -> None:
    """One attacker: check-reply with the costliest draft it can send, back to back."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"text": HOSTILE}, ensure_ascii=False).encode()
    rows: list[tuple[str, float, int]] = []
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        status, conn = request(conn, port, 30, "POST", "/api/v1/coach/check-reply",
                               body=body, headers=headers)  # fmt: skip
        rows.append(("hostile", (time.perf_counter() - t0) * 1000, status))
    out.put(rows)


def editor(instance: str, database_url, port: int, token: str, deadline: float, out) -> None:
    """Saves an article with a fresh word every ~2 s and times until search (on the node
    at `port`: another node than the saver's when there are several) finds it."""
    from kb.models import Article
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(instance, database_url=database_url)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    auth = {"Authorization": f"Bearer {token}"}
    delays: list[float] = []
    n = 0
    while time.monotonic() < deadline - 3:
        n += 1
        word = f"zz{os.getpid()}x{n}"
        ts = time.perf_counter()
        kb.save(
            Article(
                id="product-load-edit",
                title=f"编辑测试 {word}",
                category="product",
                body=f"第 {n} 次修改",
            ),
            by="bench",
        )
        t0 = time.perf_counter()
        polls = 0
        while time.perf_counter() - t0 < 10:
            polls += 1
            conn.request("GET", f"/api/v1/search?q={word}&limit=1", headers=auth)
            tq = time.perf_counter()
            reply = json.loads(conn.getresponse().read())
            hits = reply["hits"]
            if os.environ.get("KBCOACH_LOAD_DEBUG"):
                print(
                    f"  poll {polls}: {1000 * (time.perf_counter() - tq):.0f} ms wait, "
                    f"engine {reply['took_ms']} ms, hits {len(hits)}",
                    file=sys.stderr,
                )
            if hits and hits[0]["id"] == "product-load-edit":
                delays.append((time.perf_counter() - t0) * 1000)
                if os.environ.get("KBCOACH_LOAD_DEBUG"):
                    print(
                        f"edit {n}: save {1000 * (t0 - ts):.0f} ms, {polls} polls, "
                        f"{delays[-1]:.0f} ms",
                        file=sys.stderr,
                    )
                break
            time.sleep(0.02)
        else:
            delays.append(float("inf"))
        time.sleep(1.0)
    out.put(delays)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-edits", action="store_true", help="no editor (to see what edits cost)")
    ap.add_argument("--server-log", help="keep the server's JSON request log in this file")
    ap.add_argument(
        "--hostile",
        type=int,
        default=0,
        help="also run the same load with N hostile check-reply clients beside it",
    )
    ap.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="2+: run on one SQLite node, then on N nodes sharing one PostgreSQL",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kbcoach-load-"))
    if args.nodes == 1:
        inst = str(work / "instance")
        token = setup_instance(inst)
        with running_nodes(args, [inst], None, token) as ports:
            phases = [0, args.hostile] if args.hostile else [0]
            results = [run_phase(args, inst, ports, token, n, None) for n in phases]
        for hostile, (rows, delays, elapsed) in zip(phases, results, strict=True):
            report(args, hostile, rows, delays, elapsed, "1 node, SQLite")
    else:
        from tests.pg import PostgresServer

        inst = str(work / "one-node")
        token = setup_instance(inst)
        with running_nodes(args, [inst], None, token) as ports:
            single = run_phase(args, inst, ports, token, args.hostile, None)
        with PostgresServer() as pg:
            pg.create_database("kbcoach")
            url = pg.url("kbcoach")
            insts = [str(work / f"node-{chr(97 + i)}") for i in range(args.nodes)]
            token = setup_instance(insts[0], url)
            with running_nodes(args, insts, url, token) as ports:
                multi = run_phase(args, insts[0], ports, token, args.hostile, url)
        report(args, args.hostile, *single, "1 node, SQLite")
        report(args, args.hostile, *multi, f"{args.nodes} nodes, one PostgreSQL")
    print("targets: 0 errors, search p99 <= 100 ms at 16 clients, edits visible <= 2000 ms")


def setup_instance(inst: str, database_url: str | None = None) -> str:
    """A fresh instance (on `database_url` if given): the starter articles, the 7k real
    long articles when ../shared/data has them, and an agent's API token."""
    shared = ["--database-url", database_url] if database_url else []

    def cli(*a: str) -> str:
        return subprocess.run(
            [*KBCOACH, "--instance", inst, *shared, *a], check=True, capture_output=True, text=True
        ).stdout.strip()

    cli("init")
    if (DATA / "longdocs_articles.jsonl").exists():
        cli("import-jsonl", str(DATA / "longdocs_articles.jsonl"))  # 7k real long articles
    cli("user", "add", "loadbot", "--role", "agent", "--password", "load-bench-pw")
    return cli("token", "create", "loadbot").splitlines()[-1].strip()


@contextlib.contextmanager
def running_nodes(args, instances: list[str], database_url: str | None, token: str):
    """`serve --prod` per instance folder (one database); yields their ports, warmed."""
    shared = ["--database-url", database_url] if database_url else []
    ports = [free_port() for _ in instances]
    servers = [
        subprocess.Popen(
            [
                *KBCOACH,
                "--instance",
                inst,
                *shared,
                "serve",
                "--prod",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--articles",
                "/nonexistent",
            ],
            stdout=open(args.server_log, "a") if args.server_log else subprocess.DEVNULL,  # noqa: SIM115
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for inst, port in zip(instances, ports, strict=True)
    ]
    try:
        for port in ports:
            wait_ready(port)
        # warm every worker: segmenter, rule pack, postings
        warm_deadline = time.monotonic() + 5
        q: mp.Queue = mp.Queue()
        warm = [
            mp.Process(target=client, args=(ports[i % len(ports)], token, warm_deadline, i, q))
            for i in range(4 * len(ports))
        ]
        for p in warm:
            p.start()
        for _ in warm:
            q.get()
        for p in warm:
            p.join()
        yield ports
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)


def wait_ready(port: int) -> None:
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"node on port {port} did not start")


def run_phase(args, inst: str, ports: list[int], token: str, hostile: int, database_url):
    """One timed load: the clients (spread over the nodes), the editor (saving through
    the first node's database, searching on the last node), and `hostile` attackers."""
    q: mp.Queue = mp.Queue()
    deadline = time.monotonic() + args.seconds
    procs = [
        mp.Process(target=client, args=(ports[i % len(ports)], token, deadline, 1000 + i, q))
        for i in range(args.clients)
    ]
    procs += [
        mp.Process(target=hostile_client, args=(ports[i % len(ports)], token, deadline, q))
        for i in range(hostile)
    ]
    ed_q: mp.Queue = mp.Queue()
    editors = []
    if not args.no_edits:
        editors.append(
            mp.Process(target=editor, args=(inst, database_url, ports[-1], token, deadline, ed_q))
        )
    started = time.monotonic()
    for p in [*procs, *editors]:
        p.start()
    rows = [r for _ in procs for r in q.get()]
    delays = ed_q.get() if editors else []
    for p in [*procs, *editors]:
        p.join()
    return rows, delays, time.monotonic() - started


def report(args, hostile: int, rows: list, delays: list[float], elapsed: float, where: str):
    """Print one phase's table."""
    print(
        f"== load ({where}): {args.clients} clients"
        + (f" + {hostile} hostile check-reply clients" if hostile else "")
        + f", {args.seconds:.0f} s, gunicorn {args.workers} "
        f"workers x {args.threads} threads, {os.cpu_count()} cores, loopback =="
    )
    print(
        f"{'endpoint':<14}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}"
    )
    for kind in ("search", "check-reply", "hostile")[: 3 if hostile else 2]:
        ms = [m for k, m, s in rows if k == kind and s == 200]
        errors = sum(1 for k, _, s in rows if k == kind and s != 200)
        n = sum(1 for k, _, _ in rows if k == kind)
        print(
            f"{kind:<14}{n:>9}{n / elapsed:>8.0f}{pct(ms, 50):>9.1f}{pct(ms, 95):>9.1f}"
            f"{pct(ms, 99):>9.1f}{errors:>8}"
        )
    finite = [d for d in delays if d != float("inf")]
    print(
        f"edits: {len(delays)}, visible to search after median {statistics.median(finite):.0f} "
        f"ms, max {max(delays):.0f} ms (target <= 2000 ms)"
        if finite
        else "edits: none seen"
    )


if __name__ == "__main__":
    main()
