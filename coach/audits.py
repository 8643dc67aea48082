"""Audit runs kept in the instance database: the supervisor's workspace.

A run is created in one transaction that stores every conversation of the upload
(as `pending` items) and every input error (file, line, reason).  A web upload is
first stored as it came (`create_upload`: its files and form fields, the run queued
and `reading`), so the request answers at once; a worker claims it in the database
(`read_upload`, taken over when the claim expires), reads the files with
coach/uploads.py and stores their conversations and errors the same way.  Checking then
works through the pending items in batches, each claimed in the database by a
worker (`host:pid:n`) for LEASE_SECONDS (renewed while it works) and committed with
the run's progress; the run is done when no item is pending, as the database says.
Workers of other processes and nodes take batches of the same run (`work`), a claim
whose worker died expires and is taken again, and a worker saves only the items it
still holds: every item is checked into exactly one result.  A process killed
mid-run loses nothing: the next look at the runs finds it `interrupted` (no live
worker holds it) and `resume` checks only what is still pending.  Queries live in
storage/audits.py.  Appeals let an agent contest one finding; a supervisor accepts
(the finding no longer counts and the score is recomputed) or rejects it.  Every
state change goes to the append-only audit log through `log`.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable

from kb.errors import KbError
from kb.runs import HOST, process_alive
from kb.store import Store, now_iso
from storage import audits as repo

from . import waivers
from .checker import Checker
from .dupes import REASONS, fingerprint, given_id
from .scoring import UNKNOWN_AGENT, score_conversation
from .transcripts import Conversation, ImportIssue, Turn

BATCH = 100
LEASE_SECONDS = 60.0  # a claim on a batch lasts this long unless renewed (every third)
WAIT_SECONDS = 0.5  # a run's own worker, when the rest of the run is claimed elsewhere
_workers = itertools.count(1)
RUN_STATUSES = ("queued", "running", "done", "interrupted", "failed")
RUN_LABELS = {
    "queued": "排队中",
    "running": "检查中",
    "done": "已完成",
    "interrupted": "已中断",
    "failed": "失败",
}
READING_LABEL = "读取文件中"  # a queued run whose uploaded files are still to be read
LIVE_STATUSES = ("queued", "running")  # a run that still changes by itself
APPEAL_LABELS = {"open": "待处理", "accepted": "已采纳", "rejected": "已驳回"}
MAX_REASON = 1000
MAX_ERROR_TEXT = 200  # stored excerpt of an input error's path and reason
PAGE_TURN_CHARS = 2000  # of one turn's text on a conversation page
MAX_PAGE_FINDINGS = 1000  # findings read for one page of turns (a rule gives 3 a turn)


class AuditError(KbError, ValueError):
    """A request the audit store refuses (Chinese message, HTTP-like status)."""

    def __init__(self, message: str, status: int = 400, *, field: str = ""):
        super().__init__(message)
        self.status = status
        self.field = field  # the form field the message belongs next to ("" if none)


def _clip(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _conversation(data: dict) -> Conversation:
    return Conversation(
        id=data["id"],
        turns=[Turn(**t) for t in data["turns"]],
        agent=data.get("agent", ""),
        channel=data.get("channel", ""),
        started_at=data.get("started_at"),
        source=data.get("source", ""),
    )


TOP_HABITS = 5


def _labelled(run: dict) -> dict:
    """A run's row with its label and the percent of its conversations checked."""
    run["unread"] = bool(run.get("reading"))  # its uploaded files are still stored
    run["reading"] = run["unread"] and run["status"] in LIVE_STATUSES
    run["label"] = READING_LABEL if run["reading"] else RUN_LABELS.get(run["status"], run["status"])
    total, checked = run.get("total") or 0, run.get("checked") or 0
    if run["status"] == "done":
        run["percent"] = 100
    else:
        run["percent"] = min(100, checked * 100 // total) if total else 0
    return run


def new_claimer() -> str:
    """A worker's name in its claims: host, process id, and a number of this process."""
    return f"{HOST}:{os.getpid()}:{next(_workers)}"


def _claimer_process(claimer: str) -> tuple[str, int]:
    """(host, pid) of a claimer's name ("", 0 if it is none)."""
    host, _, rest = claimer.rpartition(":")
    host, _, pid = host.rpartition(":")
    return (host, int(pid)) if pid.isdigit() else ("", 0)


def _finding_rows(run_id: int, item_id: int, agent: str, findings: list[dict]) -> list[dict]:
    """Rows of the findings table for one checked conversation."""
    return [
        {
            "run_id": run_id,
            "item_id": item_id,
            "agent": agent or "",
            "idx": n,
            "rule": f["rule"],
            "category": f["category"],
            "match": (f.get("match") or "")[:100],
            "waived": int(bool(f.get("waived"))),
        }
        for n, f in enumerate(findings)
    ]


class AuditStore:
    """Runs, their conversations and findings, input errors and appeals."""

    def __init__(
        self,
        store: Store,
        log: Callable[[str, str, str, dict], None] | None = None,
        *,
        lease: float = LEASE_SECONDS,
        annotate: Callable[[Conversation, list[dict]], object] | None = None,
    ):
        self.store = store
        self.database = store.database
        self.lease = lease  # seconds a claim lasts unless renewed
        self.log = log or (lambda actor, action, target, detail: None)
        # adds to a checked conversation's findings before they are saved (the
        # application core links the article that answered the question: core/kb_answer.py)
        self.annotate = annotate

    # -- runs ------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        conversations: list[Conversation],
        errors: list[ImportIssue],
        *,
        by: str,
        rules_version: int = 0,
        created_at: str | None = None,
        reaudit: bool = False,
    ) -> int:
        """Store an upload as a queued run (one transaction); returns the run id.
        `created_at` (ISO-8601, UTC) dates the audit (default: now), e.g. an import
        of past audits.

        A conversation already audited (coach/dupes.py: same content, or same id from
        the source) is skipped and listed as a duplicate of the run, unless `reaudit`:
        then it is checked again and the earlier items are marked replaced by the new
        one, so statistics over several runs count it once.  A conversation twice in
        this upload is checked once, either way."""
        if not conversations and not errors:
            raise AuditError("没有可检查的会话")
        with self.database.begin():
            run = self._run_row(name, by, rules_version, created_at, len(errors))
            run_id = repo.insert_run(self.database, run)
            total, skipped = self._store_upload(run_id, conversations, errors, reaudit)
        self.log(
            by,
            "audit.run",
            str(run_id),
            {
                "name": name[:200],
                "conversations": total,
                "errors": len(errors),
                "duplicates": skipped,
                "reaudit": reaudit,
            },
        )
        return run_id

    @staticmethod
    def _run_row(
        name: str, by: str, rules_version: int, created_at: str | None, errors: int = 0
    ) -> dict:
        return {
            "name": name[:200],
            "created_by": by,
            "created_at": created_at or now_iso(),
            "finished_at": "",
            "status": "queued",
            "pid": 0,
            "total": 0,
            "checked": 0,
            "errors": errors,
            "rules_version": rules_version,
            "message": "",
        }

    def _store_upload(
        self, run_id: int, conversations: list[Conversation], errors: list[ImportIssue],
        reaudit: bool,
    ) -> tuple[int, int]:  # fmt: skip
        """Inside the caller's transaction: a run's conversations as pending items
        (duplicates skipped and listed, see create_run) and its input errors; returns
        (items stored, duplicates skipped)."""
        total = skipped = 0
        seen: dict[tuple[str, str], int] = {}  # key of this upload -> seq of its first
        item_of_seq: dict[int, int] = {}  # seq -> item id, of this upload's first ones
        with self.database.begin():
            for start in range(0, len(conversations), repo.CHUNK):
                chunk = conversations[start : start + repo.CHUNK]
                prints = [fingerprint(c.turns) for c in chunk]
                ids = [given_id(c) for c in chunk]
                earlier: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
                for row in repo.audited(self.database, [i for i in ids if i], prints):
                    if row["run_id"] != run_id:
                        earlier[("content", row["fingerprint"])].append((row["id"], row["run_id"]))
                        earlier[("id", row["conv_id"])].append((row["id"], row["run_id"]))
                items, dupes, replaced = [], [], []
                for n, c in enumerate(chunk):
                    seq = start + n
                    keys = [("content", prints[n])] + ([("id", ids[n])] if ids[n] else [])
                    dupe = {
                        "run_id": run_id,
                        "seq": seq,
                        "conv_id": c.id,
                        "agent": c.agent,
                        "fingerprint": prints[n],
                    }
                    first = next((seen[k] for k in keys if k in seen), None)
                    if first is not None:
                        dupes.append({**dupe, "reason": "upload", "of_seq": first})
                        continue
                    hit = next((k for k in keys if k in earlier), None)
                    if hit is not None and not reaudit:
                        of_item, of_run = earlier[hit][-1]  # the newest audit of it
                        dupes.append(
                            {**dupe, "reason": hit[0], "of_item": of_item, "of_run": of_run}
                        )
                        continue
                    for k in keys:
                        seen[k] = seq
                    replaced.append({k2 for k in keys for k2, _ in earlier.get(k, [])})
                    items.append(self._item_row(run_id, seq, c, prints[n]))
                new_ids = repo.insert_items(self.database, items)
                for item, item_id in zip(items, new_ids, strict=True):
                    item_of_seq[item["seq"]] = item_id
                repo.replace_items(
                    self.database,
                    [
                        {"old": old, "new": new}
                        for olds, new in zip(replaced, new_ids, strict=True)
                        for old in sorted(olds)
                    ],
                )
                for d in dupes:
                    if "of_seq" in d:
                        d["of_item"], d["of_run"] = item_of_seq[d.pop("of_seq")], run_id
                repo.add_duplicates(self.database, dupes)
                total += len(items)
                skipped += len(dupes)
            repo.set_total(self.database, run_id, total)
            repo.insert_errors(
                self.database,
                run_id,
                (
                    {"path": _clip(e.path), "line": e.line, "reason": _clip(e.reason)}
                    for e in errors
                ),
            )
        return total, skipped

    # -- uploads read in the background -------------------------------------------

    def create_upload(
        self,
        name: str,
        files: list[tuple[str, bytes]],
        fields: dict[str, str],
        *,
        by: str,
        rules_version: int = 0,
        reaudit: bool = False,
    ) -> int:
        """Store an upload's files as a queued run whose files are still to be read
        (one transaction, no parsing: the request answers at once); returns the run
        id.  `read_upload` (the process that took the upload, or any audit worker)
        then reads them with coach/uploads.py and the run is checked as usual.
        `fields`: the upload form's fields (coach/uploads.py load_options)."""
        if not files:
            raise AuditError("请选择要质检的会话记录文件", field="files")
        options = json.dumps({"fields": fields, "reaudit": reaudit}, ensure_ascii=False)
        with self.database.begin():
            run_id = repo.insert_run(self.database, self._run_row(name, by, rules_version, None))
            repo.add_uploads(
                self.database,
                run_id,
                [
                    {"seq": n, "name": fname, "data": data, "options": options}
                    for n, (fname, data) in enumerate(files)
                ],
            )
        self.log(
            by,
            "audit.run",
            str(run_id),
            {
                "name": name[:200],
                "files": [fname for fname, _ in files][:20],
                "bytes": sum(len(d) for _, d in files),
                "reaudit": reaudit,
            },
        )
        return run_id

    def upload_stats(self, run_id: int) -> tuple[int, int]:
        """(files, bytes) of a run still to be read."""
        return repo.upload_stats(self.database, run_id)

    def read_upload(self, run_id: int | None = None, *, claimer: str | None = None) -> int | None:
        """Claim a run whose files are still to be read (`run_id`, or the oldest one
        nobody holds), read them into its conversations and input errors, and set it
        running (done if nothing is left to check); returns its id, or None if there
        was none to claim.  The result is saved only if this worker still holds the
        claim (one that expired may have been taken by another); a failure marks the
        run failed with the files kept (`resume` reads them again)."""
        from .uploads import read_files

        claimer = claimer or new_claimer()
        run_id = repo.claim_upload(
            self.database, claimer, time.time() + self.lease, time.time(), run_id
        )
        if run_id is None:
            return None
        try:
            stored = repo.upload_files(self.database, run_id)
            if not stored:
                return None  # read by another worker meanwhile
            meta = json.loads(stored[0]["options"] or "{}")
            convs, errors = read_files(
                [(f["name"], bytes(f["data"])) for f in stored], meta.get("fields") or {}
            )
            with self.database.begin():
                if not repo.hold_upload(self.database, run_id, claimer):
                    return None
                total, _ = self._store_upload(run_id, convs, errors, bool(meta.get("reaudit")))
                repo.set_total(self.database, run_id, total)
                repo.drop_uploads(self.database, run_id)
                repo.set_read(
                    self.database,
                    run_id,
                    "running" if total else "done",
                    os.getpid(),
                    claimer,
                    time.time() + self.lease,
                    now_iso(),
                )
                repo.set_errors(self.database, run_id, len(errors))
        except Exception as exc:
            self.fail(run_id, exc)
            raise
        return run_id

    def retry_upload(self, run_id: int) -> bool:
        """A failed run whose files were never read is queued to be read again."""
        return repo.requeue_upload(self.database, run_id)

    @staticmethod
    def _item_row(run_id: int, seq: int, c: Conversation, print_: str) -> dict:
        return {
            "run_id": run_id,
            "seq": seq,
            "conv_id": c.id,
            "agent": c.agent,
            "source": c.source,
            "status": "pending",
            "score": None,
            "turns": len(c.turns),
            "agent_turns": sum(1 for t in c.turns if t.role == "agent"),
            "findings": "[]",
            "unchecked": "[]",
            "conversation": json.dumps(c.to_dict(), ensure_ascii=False),
            "fingerprint": print_,
        }

    def duplicates(self, run_id: int, *, limit: int = 50, offset: int = 0) -> list[dict]:
        """A page of the conversations of a run's upload skipped as already audited,
        in upload order, each with `label` (why) and the item and run it repeats."""
        out = repo.duplicates(self.database, run_id, limit, offset)
        for d in out:
            d["label"] = REASONS.get(d["reason"], d["reason"])
        return out

    def duplicate_count(self, run_id: int) -> int:
        return repo.duplicate_count(self.database, run_id)

    def _alive(self, claimer: str | None, until: float | None, now: float) -> bool:
        """Whether a worker still works: on this machine, its process exists; on
        another, its claim has not expired."""
        host, pid = _claimer_process(claimer or "")
        if host == HOST:
            return process_alive(pid)
        return until is not None and until >= now

    def mark_interrupted(self) -> list[int]:
        """Runs marked running that no live worker holds become interrupted: the
        worker that last claimed a batch (or started the run) is gone, and so is
        every worker holding a claim on its items.  Their claims are dropped."""
        now = time.time()
        stale, dead = [], set()
        for run in repo.running_runs(self.database):
            if run["claimed_by"] is None:  # started before claims were kept
                if process_alive(run["pid"]):
                    continue
            elif self._alive(run["claimed_by"], run["claimed_until"], now):
                continue
            holders = repo.claim_holders(self.database, run["id"], now)
            if any(self._alive(h, now, now) for h in holders):
                continue
            stale.append(run["id"])
            dead.update(holders)
        repo.interrupt(self.database, stale, sorted(dead))
        return stale

    def claim(self, run_id: int) -> bool:
        """Mark a queued or interrupted run as running, started by this process
        (atomic); its batches are then claimed by whichever workers are free."""
        self.mark_interrupted()
        return repo.start_run(
            self.database,
            run_id,
            os.getpid(),
            f"{HOST}:{os.getpid()}:0",
            time.time() + self.lease,
        )

    def check(
        self,
        run_id: int,
        checker: Checker,
        *,
        progress: Callable[[int, int], None] | None = None,
        batch: int = BATCH,
        lease: float | None = None,
    ) -> dict:
        """Check a claimed run until none of its items is left, claiming its batches
        one at a time in the database (workers of other processes may take some);
        returns the run.  Stops early if the run is no longer running (it failed in
        another worker, or was found interrupted)."""
        lease = lease or self.lease
        claimer = new_claimer()
        try:
            while True:
                rows = repo.claim_batch(
                    self.database, claimer, batch, lease, run_id=run_id, now=time.time()
                )
                if rows:
                    self._check_batch(rows, checker, claimer, lease)
                    if progress is not None:
                        run = self.run(run_id)
                        progress(run["checked"], run["total"])
                    continue
                repo.complete_run(self.database, run_id, now_iso())
                if self.run(run_id)["status"] != "running":
                    break  # done (here or elsewhere), or stopped
                # the rest is claimed by other workers: wait (and say this one lives,
                # so the run is not taken for abandoned if they die)
                repo.beat(self.database, run_id, claimer, time.time() + lease)
                time.sleep(WAIT_SECONDS)
        except Exception as exc:
            repo.release(self.database, run_id, claimer)
            self.fail(run_id, exc)
            raise
        return self.run(run_id)

    def work(
        self,
        checker_for: Callable[[int], Checker],
        *,
        claimer: str | None = None,
        batch: int = BATCH,
        lease: float | None = None,
    ) -> int:
        """One step of a worker loop: claim a batch of any running run (the oldest
        with unclaimed items), check it with the checker of the run's rule version,
        save it; returns how many conversations were checked (0: nothing to do).
        With no batch to claim, it reads an upload still to be read instead (1: one
        was read).  A failure marks that run failed, as in `check`."""
        lease = lease or self.lease
        claimer = claimer or new_claimer()
        rows = repo.claim_batch(self.database, claimer, batch, lease, now=time.time())
        if not rows:
            # an upload still to be read: read it (its batches come on the next step)
            return 1 if self.read_upload(claimer=claimer) is not None else 0
        run_id = rows[0]["run_id"]
        try:
            checker = checker_for(self.run(run_id)["rules_version"])
            return self._check_batch(rows, checker, claimer, lease)
        except Exception as exc:
            repo.release(self.database, run_id, claimer)
            self.fail(run_id, exc)
            raise

    def _check_batch(self, rows: list[dict], checker: Checker, claimer: str, lease: float) -> int:
        """Check claimed items and save them (renewing the claims while it takes long);
        returns how many were saved (those whose claim another worker took are not)."""
        run_id = rows[0]["run_id"]
        ids = [row["id"] for row in rows]
        renewed = time.monotonic()
        done, found, reports = [], [], []
        for row in rows:
            if time.monotonic() - renewed > lease / 3:
                repo.renew(self.database, claimer, run_id, ids, time.time() + lease)
                renewed = time.monotonic()
            conv = _conversation(json.loads(row["conversation"]))
            reports.append(checker.check_conversation(conv))
            if self.annotate is not None:
                self.annotate(conv, reports[-1].findings)
        # the wordings of accepted appeals are waived at once (coach/waivers.py)
        remembered = waivers.known(self.database, [r.findings for r in reports])
        for row, report in zip(rows, reports, strict=True):
            score = report.score
            if remembered and waivers.apply(report.findings, remembered):
                counted = [f for f in report.findings if not f.get("waived")]
                score, _ = score_conversation(counted, checker.pack)
            done.append(
                {
                    "item_id": row["id"],
                    "score": score,
                    "findings": json.dumps(report.findings, ensure_ascii=False),
                    "unchecked": json.dumps(report.not_checkable, ensure_ascii=False),
                }
            )
            found += _finding_rows(run_id, row["id"], row["agent"], report.findings)
        return repo.save_checked(
            self.database, run_id, claimer, done, found, now_iso(), until=time.time() + lease
        )

    def fail(self, run_id: int, exc: BaseException) -> None:
        """Mark a run failed with the error (pending items stay pending)."""
        repo.fail_run(self.database, run_id, now_iso(), f"{type(exc).__name__}: {exc}"[:500])

    def run(self, run_id: int) -> dict:
        """A run's row with `label` (its state in Chinese), `reading` (its files are
        still to be read) and `percent` (of its conversations checked)."""
        row = repo.get_run(self.database, run_id)
        if row is None:
            raise AuditError(f"质检批次 {run_id} 不存在", 404)
        return _labelled(row)

    def runs(self, limit: int = 50, offset: int = 0) -> list[dict]:
        self.mark_interrupted()
        return [_labelled(r) for r in repo.list_runs(self.database, limit, offset)]

    def progress(self, run_id: int) -> dict:
        """What a progress bar shows of a run: state, label, checked of total,
        percent, input errors, whether it is still to change (`live`) and, while its
        files are read, how many files and bytes."""
        run = self.run(run_id)
        out = {k: run[k] for k in ("id", "status", "label", "checked", "total", "errors")}
        out.update(
            percent=run["percent"],
            reading=run["reading"],
            live=run["status"] in LIVE_STATUSES,
            message=run["message"] or "",
        )
        if run["reading"]:
            out["files"], out["bytes"] = self.upload_stats(run_id)
        return out

    def run_count(self) -> int:
        return repo.count_runs(self.database)

    def errors(self, run_id: int, *, limit: int = 50, offset: int = 0) -> list[dict]:
        """A page of a run's unreadable records, in upload order."""
        return repo.errors(self.database, run_id, limit, offset)

    def error_count(self, run_id: int) -> int:
        return repo.error_count(self.database, run_id)

    # -- items -------------------------------------------------------------------

    def items(
        self, run_id: int, *, agent: str | None = None, limit: int = 500, offset: int = 0
    ) -> list[dict]:
        """A run's conversations, checked ones first, lowest score first, each with
        `nfindings`: its findings that still count (an accepted appeal waives one)."""
        return repo.items(self.database, run_id, agent, limit, offset)

    def item_count(self, run_id: int, *, agent: str | None = None) -> int:
        return repo.item_count(self.database, run_id, agent)

    def item(self, item_id: int) -> dict:
        row = repo.get_item(self.database, item_id)
        if row is None:
            raise AuditError("会话不存在", 404)
        row["findings"] = json.loads(row["findings"])
        row["unchecked"] = json.loads(row.get("unchecked") or "[]")
        row["conversation"] = json.loads(row["conversation"])
        appeals = self.appeals(item_id=item_id, limit=-1)  # all: appeal/decide check them
        by_finding: dict[int, list[dict]] = {}
        for a in appeals:
            by_finding.setdefault(a["finding"], []).append(a)
        for n, f in enumerate(row["findings"]):
            f["index"] = n
            f["appeals"] = by_finding.get(n, [])
        row["appeals"] = appeals
        return row

    def item_page(self, item_id: int, *, limit: int = 50, offset: int = 0) -> dict:
        """A conversation as its page shows it, read in SQL a page of turns at a time:
        the item's columns, `turns` (n, role, speaker, ts, text clipped to
        PAGE_TURN_CHARS, clipped), the findings of those turns and the whole-
        conversation ones (`general`), each with its index and appeals."""
        row = repo.item_head(self.database, item_id)
        if row is None:
            raise AuditError("会话不存在", 404)
        row["unchecked"] = json.loads(row.get("unchecked") or "[]")
        row["turn_list"] = [
            {
                "n": t["n"],
                "role": t["role"],
                "speaker": t["speaker"] or "",
                "ts": t["ts"],
                "text": t["text"] or "",
                "clipped": t["size"] - PAGE_TURN_CHARS if t["size"] > PAGE_TURN_CHARS else 0,
            }
            for t in repo.turns(self.database, item_id, PAGE_TURN_CHARS, limit, offset)
        ]
        first, last = offset, offset + max(len(row["turn_list"]), 1) - 1
        row["page_findings"] = repo.findings_of_turns(
            self.database, item_id, first, last, MAX_PAGE_FINDINGS
        )
        row["general"] = repo.findings_of_turns(
            self.database, item_id, row["turns"], None, MAX_PAGE_FINDINGS
        )
        shown = [f["index"] for f in row["page_findings"] + row["general"]]
        by_finding: dict[int, list[dict]] = {}
        if shown:
            for a in self.appeals(item_id=item_id, findings=shown, limit=-1):
                by_finding.setdefault(a["finding"], []).append(a)
        for f in row["page_findings"] + row["general"]:
            f["appeals"] = by_finding.get(f["index"], [])
        return row

    def finding_turn(self, item_id: int, finding: int) -> int | None:
        """The turn a finding of a conversation points at (to open its page)."""
        return repo.finding_turn(self.database, item_id, finding)

    def items_of_agent(self, agent: str, limit: int = 200, offset: int = 0) -> list[dict]:
        """An agent's checked conversations across runs, newest run first."""
        return repo.items_of_agent(self.database, agent, limit, offset)

    def items_of_agent_count(self, agent: str) -> int:
        return repo.items_of_agent_count(self.database, agent)

    def agent_count(self, run_id: int) -> int:
        return repo.agent_count(self.database, run_id)

    def agents(self, run_id: int, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """Per-agent aggregates of a run (waived findings no longer count), lowest mean
        score first; `limit` pages the agents in SQL (None: all of them). Aggregated in
        SQL over conversations and the findings table: the cost follows the agents
        shown, not how many conversations they had."""
        rows, rule_rows, match_rows = repo.agent_figures(self.database, run_id, limit, offset)
        by_rule: dict[str, list] = defaultdict(list)
        for agent, rule, category, n in rule_rows:
            by_rule[agent].append((rule, category, n))
        matches: dict[tuple[str, str], list[str]] = defaultdict(list)
        for agent, rule, match in match_rows:
            if len(matches[(agent, rule)]) < 3:
                matches[(agent, rule)].append(match)
        out = []
        for agent, n, mean, turns in rows:
            rules = by_rule.get(agent, [])
            nfind = sum(c for _, _, c in rules)
            out.append(
                {
                    "agent": agent or UNKNOWN_AGENT,
                    "conversations": n,
                    "agent_turns": turns,
                    "mean_score": mean,
                    "findings": nfind,
                    "findings_per_100_turns": round(100.0 * nfind / turns, 1) if turns else 0.0,
                    "top_habits": [
                        {
                            "rule": rule,
                            "category": category,
                            "count": c,
                            "matches": matches.get((agent, rule), []),
                        }
                        for rule, category, c in rules[:TOP_HABITS]
                    ],
                }
            )
        return out

    # -- appeals -----------------------------------------------------------------

    def appeal(self, item_id: int, finding: int, reason: str, *, by: str) -> int:
        """An agent contests one finding of a checked conversation."""
        reason = (reason or "").strip()
        if not reason:
            raise AuditError("请填写申诉理由", field="reason")
        if len(reason) > MAX_REASON:
            raise AuditError(f"申诉理由过长（最多 {MAX_REASON} 字）", 413, field="reason")
        # one conversation's appeals and decisions take turns (its row is locked)
        with self.database.begin():
            if repo.lock_item(self.database, item_id) is None:
                raise AuditError("会话不存在", 404)
            item = self.item(item_id)
            if not 0 <= finding < len(item["findings"]):
                raise AuditError("要申诉的问题不存在")
            contested = item["findings"][finding]
            if contested.get("auto_waiver"):
                raise AuditError(
                    f"该问题{waivers.auto_note(contested['auto_waiver'])}，不扣分", 409
                )
            if contested.get("waived"):
                raise AuditError("该问题的申诉已被采纳，不再扣分", 409)
            if any(a["status"] == "rejected" for a in contested["appeals"]):
                raise AuditError("该问题的申诉已被驳回，不能再次申诉", 409)
            if any(a["status"] == "open" for a in contested["appeals"]):
                raise AuditError("该问题已有待处理的申诉", 409)
            appeal_id = repo.add_appeal(
                self.database,
                {
                    "item_id": item_id,
                    "finding": finding,
                    "rule": contested["rule"],
                    "by": by,
                    "reason": reason,
                    "at": now_iso(),
                    "status": "open",
                    "decided_by": "",
                    "decided_at": "",
                    "note": "",
                },
            )
        self.log(
            by,
            "appeal.create",
            str(appeal_id),
            {"item": item_id, "finding": finding, "rule": contested["rule"]},
        )
        return appeal_id

    def decide(self, appeal_id: int, accept: bool, note: str, *, by: str, pack) -> dict:
        """Accept (the finding is waived, the score recomputed) or reject an appeal;
        a rejection needs a reason (the agent reads it), an acceptance may have one."""
        status = "accepted" if accept else "rejected"
        note = (note or "").strip()
        if not accept and not note:
            raise AuditError("驳回申诉时请填写理由（申诉人会看到）", field="note")
        if len(note) > MAX_REASON:
            raise AuditError(f"处理意见过长（最多 {MAX_REASON} 字）", 413, field="note")
        with self.database.begin():
            appeal = repo.appeal_row(self.database, appeal_id)
            if appeal is None:
                raise AuditError("申诉不存在", 404)
            item = repo.lock_item(self.database, appeal["item_id"])
            if item is None:
                raise AuditError("会话不存在", 404)
            if not repo.decide_appeal(
                self.database, appeal_id, status, by, now_iso(), (note or "")[:MAX_REASON]
            ):
                raise AuditError("该申诉已处理", 409)
            if accept:
                findings = json.loads(item["findings"])
                findings[appeal["finding"]]["waived"] = True
                findings[appeal["finding"]]["deduction"] = 0
                counted = [f for f in findings if not f.get("waived")]
                score, _ = score_conversation(counted, pack)
                repo.waive(
                    self.database,
                    item["id"],
                    appeal["finding"],
                    json.dumps(findings, ensure_ascii=False),
                    score,
                )
                # the same rule and wording is waived in later runs
                waivers.remember(
                    self.database,
                    findings[appeal["finding"]],
                    appeal_id=appeal_id,
                    item_id=item["id"],
                    by=by,
                    at=now_iso(),
                )
        self.log(
            by,
            f"appeal.{'accept' if accept else 'reject'}",
            str(appeal_id),
            {"item": item["id"], "rule": appeal["rule"], "note": (note or "")[:200]},
        )
        return self.item(item["id"])

    def get_appeal(self, appeal_id: int) -> dict:
        """One appeal with the run and conversation it belongs to."""
        row = repo.get_appeal(self.database, appeal_id)
        if row is None:
            raise AuditError("申诉不存在", 404)
        return row

    def appeals(
        self,
        *,
        item_id: int | None = None,
        status: str | None = None,
        by: str | None = None,
        findings: list[int] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[dict]:
        """Appeals, newest first, filtered by conversation (and its findings), state or
        author; `limit`/`offset` page them (limit < 0: all)."""
        out = repo.appeals(
            self.database,
            item_id=item_id,
            status=status,
            by=by,
            findings=findings,
            limit=limit,
            offset=offset,
        )
        for a in out:
            a["label"] = APPEAL_LABELS.get(a["status"], a["status"])
        return out

    def appeal_count(self, *, status: str | None = None, by: str | None = None) -> int:
        return repo.appeal_count(self.database, status=status, by=by)
