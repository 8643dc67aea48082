"""Supervisor workspace: upload transcripts into audit runs, read each conversation
with its findings, decide appeals, edit the team rule pack; agents see their own
audited conversations and appeal a finding (the audit log is in web/admin.py).

An upload is stored as it came (files and form fields) and answered at once with the
run's page; reading the files and checking them runs in a background thread of the
process that took the upload (or the audit worker of any process, which takes over a
reading whose claim expired); the pages show progress bars fed by GET
/audits/<id>/status (web/static/progress.js).  The audit
worker thread of every server process (AUDIT_WORKER_SECONDS, core/audits.py) helps
with the batches of any running run, so the nodes sharing a PostgreSQL database check
a large upload together.  Batches are claimed and committed in the database, so a worker that dies
leaves its batch to another (when its claim expires) or, if none is left, an
`interrupted` run that a supervisor resumes from the run page (or `kbcoach audit
resume`).
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from coach.audits import APPEAL_LABELS, AuditError, AuditStore
from coach.options import FORMAT_LABELS, ImportOptions, read_options
from coach.playground import MAX_PASTE_CHARS
from coach.rulebook import STARTER, RuleBook
from coach.ruleform import LEVEL_NAMES
from coach.rules import RuleError
from coach.transcripts import SUFFIXES, TEXT_SUFFIXES, ImportIssue, load_bytes
from coach.uploads import form_fields, is_blank, stored_fields
from coach.waivers import rule_rates
from core.team_agents import TeamAgents
from kb.errors import KbError, StaleVersion

from . import get_kb, ruleform, services
from .auth import accounts, actor, requires
from .coach import checker, checker_for
from .errors import ApiError, json_request, wants_json

bp = Blueprint("supervise", __name__)
RUN_NAME_MAX = 200
MAX_FILES = 20
UPLOAD_SUFFIXES = tuple(SUFFIXES) + TEXT_SUFFIXES
API_BODY_MAX = 4 * 1024 * 1024
MAX_API_CONVERSATIONS = 5000
# Every list a page shows is read a page at a time in SQL, with its count: a page
# stays small whatever was uploaded (issue 10).
PER_PAGE = 100  # conversations of a run
ERRORS_PER_PAGE = 50  # unreadable records of a run
DUPES_PER_PAGE = 50  # conversations of a run skipped as already audited
AGENTS_PER_PAGE = 50
TURNS_PER_PAGE = 50  # of one conversation
LIST_PER_PAGE = 50  # runs, appeals, my conversations and appeals, rule versions
LOG_PER_PAGE = 100
API_PER_PAGE = 500
MAX_PAGE = 10**6


def page_arg(name: str = "page") -> int:
    """A 1-based page number from the query string (bad or huge values are clamped)."""
    return min(max(1, request.args.get(name, 1, type=int) or 1), MAX_PAGE)


@bp.app_template_global()
def page_url(param: str, number: int, anchor: str = "") -> str:
    """This page's URL with one page parameter changed (the other arguments kept)."""
    args = {**(request.view_args or {}), **request.args.to_dict(), param: number}
    return url_for(request.endpoint, **args) + anchor


def audits() -> AuditStore:
    return AuditStore(
        get_kb().store, log=accounts().audit, lease=current_app.config["AUDIT_LEASE_SECONDS"]
    )


def rulebook() -> RuleBook:
    return RuleBook(get_kb().store, current_app.config["INSTANCE"])


def start_check(run_id: int) -> None:
    """Claim the run and check it in a background thread of this process."""
    store = audits()
    if not store.claim(run_id):
        raise ApiError("该批次正在检查或已完成", 409)
    _in_background(run_id, read=False)


def start_reading(run_id: int) -> None:
    """Read a stored upload's files and check the run in a background thread of this
    process (an audit worker of any process may take the reading over)."""
    _in_background(run_id, read=True)


def _in_background(run_id: int, *, read: bool) -> None:
    app = current_app._get_current_object()

    def work() -> None:
        with app.app_context():
            audits_bg = AuditStore(
                get_kb().store,
                lease=app.config["AUDIT_LEASE_SECONDS"],
                annotate=services().kb_answers.annotate,
            )
            try:
                if read and audits_bg.read_upload(run_id) is None:
                    return  # another worker reads it (or has read it)
                run = audits_bg.run(run_id)
                if run["status"] == "running":  # not done at once: nothing to check
                    audits_bg.check(run_id, checker_for(run["rules_version"]))
            except Exception as exc:  # recorded on the run as failed; the worker lives on
                audits_bg.fail(run_id, exc)
                app.logger.exception("audit run %s failed", run_id)
            finally:
                get_kb().close()  # this thread's database connection

    threading.Thread(target=work, name=f"audit-{run_id}", daemon=True).start()


def app_checkers(app):
    """`checker_for` of this app for a thread outside any request (the audit worker):
    the rule packs' Checkers are the ones its requests use."""
    ref = weakref.ref(app)

    def get(version: int):
        current = ref()
        if current is None:
            raise RuntimeError("the app is gone")
        with current.app_context():
            return checker_for(version)

    return get


def _is_supervisor() -> bool:
    return current_user.can("coach.audit")


def _own_item(item_id: int, page: int | None = None) -> dict:
    """An audited conversation the current user may read: supervisors any, an agent
    only their own (the transcript's agent id equals the username); else 404.
    With `page`: only that page of turns and their findings (`AuditStore.item_page`)."""
    store = audits()
    if page is None:
        item = store.item(item_id)
    else:
        offset = (page - 1) * TURNS_PER_PAGE
        item = store.item_page(item_id, limit=TURNS_PER_PAGE, offset=offset)
    if not _is_supervisor() and item["agent"] != current_user.username:
        raise ApiError("会话不存在", 404)
    return item


# -- runs ----------------------------------------------------------------------


def _render_runs(errors: dict | None = None, form: dict | None = None, status: int = 200):
    """The runs page with the upload form (its errors next to their fields, the
    input kept)."""
    store, page = audits(), page_arg()
    return render_template(
        "audits.html",
        runs=store.runs(LIST_PER_PAGE, (page - 1) * LIST_PER_PAGE),
        run_count=store.run_count(),
        page=page,
        per_page=LIST_PER_PAGE,
        max_files=MAX_FILES,
        suffixes=" ".join(UPLOAD_SUFFIXES),
        max_mb=current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
        errors=errors or {},
        form=form or {},
        formats=FORMAT_LABELS,
        team_agent_count=team_agents().count(),
    ), status


def _upload_options() -> tuple[ImportOptions, dict, dict[str, str]]:
    """How to read the upload (the form's 客服, 客服名称规则, 格式 and 映射文件 fields,
    plus the team's agent names and aliases), the form errors (Chinese, shown next to
    each field), and the fields stored with the upload for the background read."""
    from coach.mapping import MAX_MAPPING_BYTES

    mapping = request.files.get("mapping")
    raw, name = None, "映射文件"
    if mapping is not None and mapping.filename:
        name = Path(mapping.filename).name[:100]
        raw = mapping.read(MAX_MAPPING_BYTES + 1)
    options, errors = read_options(
        request.form.get("agents", ""),
        request.form.get("agent_pattern", ""),
        request.form.get("format", ""),
        raw,
        name,
    )
    team = team_agents()
    fields = stored_fields(form_fields(request.form), raw, name, *team.names_and_aliases())
    return team.apply(options), errors, fields


def team_agents() -> TeamAgents:
    return TeamAgents(get_kb().store, accounts())


@bp.get("/audits")
@requires("coach.audit")
def runs():
    return _render_runs()


def _read_upload(files) -> list[tuple[str, bytes]]:
    """The uploaded files as (name, bytes), or an ApiError about the files field
    (what can be told without parsing: the background worker parses them)."""
    if not files:
        raise ApiError("请选择要质检的会话记录文件", 400)
    if len(files) > MAX_FILES:
        raise ApiError(f"一次最多上传 {MAX_FILES} 个文件", 413)
    out = []
    for f in files:
        name = Path(f.filename).name  # only the name: nothing from the client reaches the disk
        if not name.lower().endswith(UPLOAD_SUFFIXES):
            raise ApiError(f"文件「{name}」类型不支持，可用: {' '.join(UPLOAD_SUFFIXES)}", 415)
        out.append((name, f.read()))
    if all(is_blank(data) for _, data in out):
        names = "」「".join(name for name, _ in out)
        raise ApiError(f"文件「{names}」中没有会话（为空或只有空行）", 400)
    return out


@bp.post("/audits")
@requires("coach.audit")
def upload():
    """Store the files and answer at once with the run's page; the files are read
    (a parse error listed with its file and line) and checked in the background."""
    files = [f for f in request.files.getlist("files") if f and f.filename]
    # a browser cannot keep the chosen files; what was typed is kept
    form = {
        k: request.form.get(k, "")[:200]
        for k in ("name", "agents", "agent_pattern", "format", "reaudit")
    }
    _options, form_errors, fields = _upload_options()
    if len(request.form.get("name") or "") > RUN_NAME_MAX:
        form_errors["name"] = f"批次名称最多 {RUN_NAME_MAX} 个字"
    if form_errors:
        if wants_json():
            raise ApiError(next(iter(form_errors.values())), 400)
        return _render_runs(form_errors, form, 400)
    try:
        stored = _read_upload(files)
    except ApiError as exc:
        if wants_json():
            raise
        return _render_runs({"files": exc.message}, form, exc.status)
    label = (request.form.get("name") or "").strip() or ", ".join(name for name, _ in stored)
    run_id = audits().create_upload(
        label,
        stored,
        fields,
        by=actor(),
        rules_version=rulebook().version(),
        reaudit=request.form.get("reaudit") == "1",
    )
    start_reading(run_id)
    return redirect(url_for("supervise.run", run_id=run_id))


@bp.get("/audits/<int:run_id>/status")
@requires("coach.audit")
def run_status(run_id: int):
    """A run's progress for the pages' progress bars (web/static/progress.js)."""
    store = audits()
    store.mark_interrupted()
    return {"ok": True, **store.progress(run_id)}


@bp.get("/audits/<int:run_id>")
@requires("coach.audit")
def run(run_id: int):
    store = audits()
    store.mark_interrupted()
    info = store.run(run_id)
    agent = request.args.get("agent")
    page, epage, apage, dpage = page_arg(), page_arg("epage"), page_arg("apage"), page_arg("dpage")
    from coach.compare import reaudit_of, reaudits

    return render_template(
        "audit_run.html",
        reaudit_of=reaudit_of(store, run_id),
        reaudits=reaudits(store, run_id),
        duplicates=store.duplicates(
            run_id, limit=DUPES_PER_PAGE, offset=(dpage - 1) * DUPES_PER_PAGE
        ),
        duplicate_count=store.duplicate_count(run_id),
        dpage=dpage,
        dupes_per_page=DUPES_PER_PAGE,
        run=info,
        agents=store.agents(run_id, limit=AGENTS_PER_PAGE, offset=(apage - 1) * AGENTS_PER_PAGE),
        agent_count=store.agent_count(run_id),
        apage=apage,
        agents_per_page=AGENTS_PER_PAGE,
        items=store.items(run_id, agent=agent, limit=PER_PAGE, offset=(page - 1) * PER_PAGE),
        item_count=store.item_count(run_id, agent=agent),
        page=page,
        per_page=PER_PAGE,
        errors=store.errors(run_id, limit=ERRORS_PER_PAGE, offset=(epage - 1) * ERRORS_PER_PAGE),
        error_count=store.error_count(run_id),
        epage=epage,
        errors_per_page=ERRORS_PER_PAGE,
        agent=agent,
    )


@bp.post("/audits/<int:run_id>/resume")
@requires("coach.audit")
def resume(run_id: int):
    store = audits()
    store.run(run_id)
    if store.retry_upload(run_id):  # its files were never read: read them again
        start_reading(run_id)
    else:
        start_check(run_id)
    store.log(actor(), "audit.resume", str(run_id), {})
    return redirect(url_for("supervise.run", run_id=run_id))


# -- conversations and appeals -------------------------------------------------------


def _segments(text: str, findings: list[dict]) -> list[tuple[str, int | None]]:
    """The turn's text cut at the flagged spans: (piece, finding index or None)."""
    out: list[tuple[str, int | None]] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f["span"][0]):
        start, end = f["span"]
        if start < pos or end <= start or end > len(text):
            continue  # overlapping or whole-turn finding: listed below the turn only
        out.append((text[pos:start], None))
        out.append((text[start:end], f["index"]))
        pos = end
    out.append((text[pos:], None))
    return [s for s in out if s[0]]


@bp.get("/audits/items/<int:item_id>")
@requires("coach.appeal")
def item(item_id: int):
    finding = request.args.get("finding", "")
    if "page" not in request.args and finding.isdigit():  # open the page of a finding
        page = _finding_page(item_id, int(finding))
    else:
        page = page_arg()
    return _render_item(item_id, page)


def _finding_page(item_id: int, finding: int) -> int:
    """The page of turns that shows a finding of a conversation."""
    turn = audits().finding_turn(item_id, finding)
    return turn // TURNS_PER_PAGE + 1 if turn is not None else 1


def _render_item(item_id: int, page: int, form: dict | None = None, status: int = 200):
    """A conversation page; `form` (finding or appeal_id, the text typed, `errors` by
    field) puts a refused appeal or decision back in its form with the message."""
    it = _own_item(item_id, page)
    by_turn: dict[int, list[dict]] = {}
    for f in it["page_findings"]:
        by_turn.setdefault(f["turn"], []).append(f)
    turns = [
        {
            **t,
            "segments": _segments(t["text"], by_turn.get(t["n"], [])),
            "findings": by_turn.get(t["n"], []),
        }
        for t in it["turn_list"]
    ]
    return render_template(
        "audit_item.html",
        item=it,
        run=audits().run(it["run_id"]),
        turns=turns,
        general=it["general"],
        page=page,
        per_page=TURNS_PER_PAGE,
        own=it["agent"] == current_user.username,
        supervisor=_is_supervisor(),
        form=form or {},
    ), status


def _form_refusal(exc: AuditError) -> bool:
    """Whether a refused form post is shown again with the message next to its field
    (a browser's form); an API client gets the JSON error instead."""
    return bool(exc.field) and not wants_json()


@bp.post("/audits/items/<int:item_id>/appeals")
@requires("coach.appeal")
def appeal(item_id: int):
    it = _own_item(item_id)
    if it["agent"] != current_user.username:
        raise ApiError("只能对自己的会话提出申诉", 403)
    finding = request.form.get("finding", "")
    if not finding.isdigit():
        raise ApiError("字段 finding 应为问题序号", 400)
    reason = request.form.get("reason", "")
    try:
        audits().appeal(item_id, int(finding), reason, by=actor())
    except AuditError as exc:
        if not _form_refusal(exc):
            raise
        form = {"finding": int(finding), "reason": reason, "errors": {exc.field: str(exc)}}
        return _render_item(item_id, _finding_page(item_id, int(finding)), form, exc.status)
    flash("申诉已提交，等待主管处理")
    return redirect(url_for("supervise.item", item_id=item_id))


def _render_appeals(status: str, form: dict | None = None, code: int = 200):
    store, page = audits(), page_arg()
    return render_template(
        "appeals.html",
        appeals=store.appeals(
            status=status, limit=LIST_PER_PAGE, offset=(page - 1) * LIST_PER_PAGE
        ),
        count=store.appeal_count(status=status),
        page=page,
        per_page=LIST_PER_PAGE,
        status=status,
        labels=APPEAL_LABELS,
        form=form or {},
    ), code


@bp.get("/appeals")
@requires("coach.audit")
def appeals():
    status = request.args.get("status", "open")
    if status not in APPEAL_LABELS:
        status = "open"
    return _render_appeals(status)


def _decide(appeal_id: int, decision: object, note: object) -> dict:
    """Accept or reject an appeal with the rules of its run; the conversation after."""
    if decision not in ("accept", "reject"):
        raise ApiError("字段 decision 应为 accept 或 reject", 400)
    if not isinstance(note, str):
        raise AuditError("处理意见应为文字", field="note")
    store = audits()
    version = store.run(store.get_appeal(appeal_id)["run_id"])["rules_version"]
    return store.decide(
        appeal_id, decision == "accept", note, by=actor(), pack=checker_for(version).pack
    )


@bp.post("/appeals/<int:appeal_id>")
@requires("coach.audit")
def decide(appeal_id: int):
    decision = request.form.get("decision")
    note = request.form.get("note", "")
    try:
        item_row = _decide(appeal_id, decision, note)
    except AuditError as exc:
        if not _form_refusal(exc):
            raise
        form = {"appeal_id": appeal_id, "note": note, "errors": {exc.field: str(exc)}}
        if request.form.get("back") == "item":
            appeal_row = audits().get_appeal(appeal_id)
            page = _finding_page(appeal_row["item_id"], appeal_row["finding"])
            return _render_item(appeal_row["item_id"], page, form, exc.status)
        return _render_appeals("open", form, exc.status)
    flash("已采纳申诉，分数已重算" if decision == "accept" else "已驳回申诉")
    if request.form.get("back") == "item":
        return redirect(url_for("supervise.item", item_id=item_row["id"]))
    return redirect(url_for("supervise.appeals"))


def _whose_audits() -> str:
    """The agent whose audits are asked for: oneself; a supervisor may name another
    with ?agent= (an agent naming someone else is refused)."""
    me = current_user.username
    agent = (request.args.get("agent") or "").strip()[:200]
    if not agent or agent == me:
        return me
    if not _is_supervisor():
        raise ApiError("只能查看自己的质检结果", 403)
    return agent


@bp.get("/my/audits")
@requires("coach.appeal")
def mine():
    from core.agent_audits import AgentAudits, parse_filters, presets

    agent = _whose_audits()
    filters, errors = parse_filters(request.args)
    store, page, apage = audits(), page_arg(), page_arg("apage")
    view = AgentAudits(store.database).overview(
        agent, filters, limit=LIST_PER_PAGE, offset=(page - 1) * LIST_PER_PAGE
    )
    return render_template(
        "my_audits.html",
        view=view,
        agent=agent,
        own=agent == current_user.username,
        supervisor=_is_supervisor(),
        filters=filters,
        errors=errors,
        presets=presets(),
        page=page,
        appeals=store.appeals(by=agent, limit=LIST_PER_PAGE, offset=(apage - 1) * LIST_PER_PAGE),
        appeal_count=store.appeal_count(by=agent),
        apage=apage,
        per_page=LIST_PER_PAGE,
    ), (400 if errors else 200)


# -- team rule pack --------------------------------------------------------------


@bp.route("/rules", methods=["GET", "POST"])
@requires("rules.edit")
def rules():
    book = rulebook()
    current = book.current()
    page = {
        "text": current["yaml"] if current else STARTER,
        "base": current["id"] if current else 0,  # the version the form is based on
        "note": "",
        "problems": [],
        "conflict": None,
        "notice": None,
        "status": 200,
    }
    if request.method == "GET":
        return _rules_page(book, page)
    action = request.form.get("action") or "save"
    if action in ("form", "try_form"):
        return _rules_form(book, page, action)
    if "yaml" not in request.form:
        raise ApiError("缺少字段 yaml", 400)
    page["text"] = text = request.form["yaml"]
    page["note"] = note = (request.form.get("note") or "").strip()
    # the page's form always sends it; a post without one (a script written
    # before versions) is saved as before, unchecked
    base = _version_field(request.form["version"]) if "version" in request.form else None
    page["base"] = base
    if action == "reapply":
        page["base"] = _version_field(request.form.get("rebase_to"))
        page["notice"] = f"已把你的规则放到当前 v{page['base']} 之上：请检查后再保存。"
        return _rules_page(book, page, posted=True)
    if action == "try_yaml":
        page["play"] = ruleform.playground(book, text)
        page["status"] = page["play"]["status"]
        return _rules_page(book, page, posted=True)
    return _save_rules(book, page, text, note, base, posted=True)


def _save_rules(book, page: dict, text: str, note: str, base: int | None, posted: bool):
    """Save an overlay text as a new version (the YAML editor and the form alike)."""
    if book.unchanged(text):
        flash("规则没有改动，未保存新版本")
        return redirect(url_for("supervise.rules"))
    try:
        version = book.save(text, by=actor(), note=note, base_version=base)
    except StaleVersion as exc:
        page["status"] = 409
        page["text"] = text  # the form's edit as YAML: "reapply" works on it
        page["conflict"] = {
            "message": exc.message,
            "current_version": exc.current_version,
            "diff": [{**d, "html": Markup(d["html"])} for d in exc.details["diff"]],
        }
    except RuleError as exc:
        page["problems"] = exc.problems
        page["status"] = 400
    else:
        accounts().audit(actor(), "rules.update", f"v{version}", {"note": note[:200]})
        current_app.extensions.pop("coach.rules_seen", None)  # this worker: at once
        flash(f"已保存团队规则 v{version}，之后的质检使用新规则")
        return redirect(url_for("supervise.rules"))
    return _rules_page(book, page, posted=posted)


def _rules_form(book, page: dict, action: str):
    """Save by form, or try the form's draft in the playground."""
    page["base"] = base = _version_field(request.form.get("version"))
    page["note"] = note = (request.form.get("note") or "").strip()
    page["text"] = request.form.get("yaml", page["text"])
    text, errors = ruleform.overlay_from_form(book, base)
    if errors:
        page["form_errors"] = errors
        page["status"] = 400
        if action == "try_form":
            page["play"] = {"error": "表单有错误，请先修改标出的字段", "results": []}
        return _rules_page(book, page, posted=True)
    if action == "try_form":
        page["play"] = ruleform.playground(book, text)
        page["status"] = page["play"]["status"]
        return _rules_page(book, page, posted=True)
    return _save_rules(book, page, text, note, base, posted=True)


def _version_field(raw: str | None) -> int:
    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise ApiError("表单缺少有效的版本号：请重新打开规则页再修改", 400)
    return int(value)


def _rules_page(book, page: dict, posted: bool = False):
    """The rules page: the form, the YAML editor, the playground, the rule list and
    the history (what was posted is shown again, with its messages)."""
    current = book.current()
    problems = page["problems"]
    try:
        rules_now = checker_for(book.version()).pack.rules
    except RuleError as exc:  # a version saved before a check it now fails: show why
        rules_now = checker_for(0).pack.rules
        problems = problems or [
            f"当前版本 v{book.version()} 无法加载，请修改后保存：",
            *exc.problems,
        ]
        problems = [p.replace(str(book.folder) + "/", "") for p in problems]
    base = page["base"] if page["base"] is not None else (current["id"] if current else 0)
    try:
        rows = ruleform.form_rows(book, base)
    except KbError:  # a base version that does not exist: the current one
        base = current["id"] if current else 0
        rows = ruleform.form_rows(book, base)
    if posted:
        rows = ruleform.posted_rows(rows)
    form_errors = {**ruleform.problems_by_rule(problems, rows), **page.get("form_errors", {})}
    hpage = page_arg("hpage")
    return render_template(
        "rules.html",
        text=page["text"],
        problems=problems,
        history=book.history(LIST_PER_PAGE, (hpage - 1) * LIST_PER_PAGE),
        version_count=book.version_count(),
        hpage=hpage,
        per_page=LIST_PER_PAGE,
        current=current,
        rules=rules_now,
        rates=rule_rates(get_kb().store.database),
        base=base,
        note=page["note"],
        conflict=page["conflict"],
        notice=page["notice"],
        form_rows=rows,
        form_errors=form_errors,
        level_names=LEVEL_NAMES,
        conversation=request.form.get("conversation", "") if posted else "",
        max_paste=MAX_PASTE_CHARS,
        play=page.get("play"),
    ), page["status"]


# -- JSON API ------------------------------------------------------------------------------


def _api_options(body: dict) -> ImportOptions:
    """ImportOptions of a JSON body's agents / agent_pattern / format / mapping (YAML
    text), plus the team's; an ApiError naming the field when one is refused."""
    mapping = body.get("mapping")
    if mapping is not None and not isinstance(mapping, str):
        raise ApiError("字段 mapping 应为映射文件（YAML）的文本", 400)
    options, errors = read_options(
        body.get("agents"),
        body.get("agent_pattern"),
        body.get("format"),
        mapping.encode("utf-8") if mapping is not None else None,
        "mapping",
    )
    if errors:  # the body's key names the field: agents, agent_pattern, format, mapping
        key, message = next(iter(errors.items()))
        raise ApiError(f"字段 {key}：{message}", 400)
    return team_agents().apply(options)


def _api_file(body: dict, options: ImportOptions) -> tuple[list, list]:
    """The conversations of `file`: {"name", "content"} (text) or {"name", "base64"}
    (bytes, e.g. an .xlsx), read like an uploaded file."""
    import base64
    import binascii

    f = body["file"]
    if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"].strip():
        raise ApiError('字段 file 应为 {"name": 文件名, "content": 文本} 或带 base64 的对象', 400)
    name = Path(f["name"]).name[:200]
    if isinstance(f.get("content"), str):
        data = f["content"].encode("utf-8")
    elif isinstance(f.get("base64"), str):
        try:
            data = base64.b64decode(f["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("字段 file.base64 不是有效的 Base64", 400) from None
    else:
        raise ApiError("字段 file 缺少 content（文本）或 base64", 400)
    convs, errors = load_bytes(data, name, **options.loader())
    if not convs and not errors:
        raise ApiError(f"文件「{name}」中没有会话（为空或只有空行）", 400)
    return convs, errors


@bp.post("/api/v1/audits")
@requires("coach.audit")
def api_create():
    """{"name"?, "conversations": [...]} or {"name"?, "file": {"name", "content" |
    "base64"}}, with "agents"?, "agent_pattern"?, "format"?, "mapping"? (YAML text)
    → 202 {"run_id"}; checking continues in the background (poll GET
    /api/v1/audits/<id>)."""
    from coach.importers import conversation_from_dict

    body = json_request(API_BODY_MAX)
    if not isinstance(body, dict) or not (
        isinstance(body.get("conversations"), list) or "file" in body
    ):
        raise ApiError("字段 conversations 应为会话数组（或用 file 上传一个导出文件）", 400)
    name = body.get("name") or "API 上传"
    if not isinstance(name, str):
        raise ApiError("字段 name 应为字符串", 400)
    if len(name) > RUN_NAME_MAX:
        raise ApiError(f"字段 name 过长（最多 {RUN_NAME_MAX} 个字）", 400)
    reaudit = body.get("reaudit", False)
    if not isinstance(reaudit, bool):
        raise ApiError("字段 reaudit 应为 true 或 false", 400)
    options = _api_options(body)
    if "file" in body:
        convs, errors = _api_file(body, options)
    else:
        records = body["conversations"]
        if len(records) > MAX_API_CONVERSATIONS:
            raise ApiError(f"一次最多 {MAX_API_CONVERSATIONS} 个会话", 413)
        agents = options.agent_test()
        convs, errors = [], []
        for n, record in enumerate(records, 1):
            try:
                convs.append(conversation_from_dict(record, f"<request>#{n}", n, agents))
            except ValueError as exc:
                errors.append(ImportIssue("<request>", n, str(exc)))
    store = audits()
    run_id = store.create_run(
        name, convs, errors, by=actor(), rules_version=rulebook().version(), reaudit=reaudit
    )
    start_check(run_id)
    return {
        "ok": True,
        "run_id": run_id,
        "errors": [e.to_dict() for e in errors],
        "duplicate_count": store.duplicate_count(run_id),
    }, 202


# which process holds the run: bookkeeping of the workers, not part of the API
# and what the pages' progress bars read (GET /audits/<id>/status)
RUN_INTERNAL = frozenset({"pid", "claimed_by", "claimed_until", "reading", "unread", "percent"})


@bp.get("/api/v1/audits/<int:run_id>")
@requires("coach.audit")
def api_run(run_id: int):
    """The run with page `page` (500 each) of its agents, conversations and
    unreadable records, and how many there are of each."""
    store = audits()
    store.mark_interrupted()
    info = store.run(run_id)
    page = page_arg()
    at = dict(limit=API_PER_PAGE, offset=(page - 1) * API_PER_PAGE)
    return {
        "ok": True,
        "run": {k: v for k, v in info.items() if k not in RUN_INTERNAL},
        "page": page,
        "per_page": API_PER_PAGE,
        "agents": store.agents(run_id, **at),
        "agent_count": store.agent_count(run_id),
        "items": store.items(run_id, **at),
        "item_count": store.item_count(run_id),
        "errors": store.errors(run_id, **at),
        "error_count": store.error_count(run_id),
        "duplicates": store.duplicates(run_id, **at),
        "duplicate_count": store.duplicate_count(run_id),
    }


ITEM_API_FIELDS = ("id", "run_id", "conv_id", "agent", "source", "status", "score", "turns",
                   "agent_turns", "findings", "unchecked", "conversation", "appeals")  # fmt: skip


@bp.get("/api/v1/audits/items/<int:item_id>")
@requires("coach.appeal")
def api_item(item_id: int):
    """One audited conversation: its turns and findings, each finding with its
    appeals and, where the knowledge base had the answer, `kb_answer` ({id, title,
    score, question}).  A supervisor reads any, an agent their own."""
    it = _own_item(item_id)
    return {"ok": True, "item": {k: it.get(k) for k in ITEM_API_FIELDS}}


@bp.get("/api/v1/my/audits")
@requires("coach.appeal")
def api_mine():
    """The agent's own audits (a supervisor: ?agent=): summary, weekly trend, habits
    and page `page` of the conversations (latest audit each); the filters of the
    page (from, to, min, max, findings=1)."""
    from core.agent_audits import AgentAudits, parse_filters

    agent = _whose_audits()
    filters, errors = parse_filters(request.args)
    if errors:
        raise ApiError("；".join(errors.values()), 400)
    page = page_arg()
    view = AgentAudits(audits().database).overview(
        agent, filters, limit=API_PER_PAGE, offset=(page - 1) * API_PER_PAGE
    )
    view.pop("chart")
    return {"ok": True, **view, "page": page, "per_page": API_PER_PAGE}


API_FORM_MAX = 64 * 1024


def _json_object() -> dict:
    body = json_request(API_FORM_MAX)
    if not isinstance(body, dict):
        raise ApiError("请求体应为 JSON 对象", 400)
    return body


@bp.post("/api/v1/audits/items/<int:item_id>/appeals")
@requires("coach.appeal")
def api_appeal(item_id: int):
    """{"finding": n (0-based), "reason": "…"} → 201 {"appeal_id"}: the agent
    contests a finding of their own conversation (a reason is required)."""
    it = _own_item(item_id)
    if it["agent"] != current_user.username:
        raise ApiError("只能对自己的会话提出申诉", 403)
    body = _json_object()
    finding = body.get("finding")
    if not isinstance(finding, int) or isinstance(finding, bool) or finding < 0:
        raise ApiError("字段 finding 应为问题序号（从 0 起的整数）", 400)
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ApiError("字段 reason 应为文字", 400)
    appeal_id = audits().appeal(item_id, finding, reason, by=actor())
    return {"ok": True, "appeal_id": appeal_id}, 201


@bp.post("/api/v1/appeals/<int:appeal_id>")
@requires("coach.audit")
def api_decide(appeal_id: int):
    """{"decision": "accept"|"reject", "note": "…"} → the appeal and the
    conversation's score after it (a rejection needs a note)."""
    body = _json_object()
    item_row = _decide(appeal_id, body.get("decision"), body.get("note", ""))
    appeal_row = audits().get_appeal(appeal_id)
    return {
        "ok": True,
        "appeal": {
            k: appeal_row[k] for k in ("id", "item_id", "finding", "rule", "status", "note")
        },
        "score": item_row["score"],
    }


# -- template helpers ----------------------------------------------------------------------


@bp.app_template_filter("category_name")
def category_name(category: str) -> str:
    from coach.writers import CATEGORY_NAMES

    return CATEGORY_NAMES.get(category, category)


@bp.app_template_filter("rule_name")
def rule_name(rule_id: str) -> str:
    """A rule id as people read it: its category's Chinese name, and for those who
    edit rule packs (where the id is what they write) the id too."""
    rule = checker().pack.get(rule_id)  # version looked up at most once a second
    if rule is None:
        return rule_id
    if current_user.is_authenticated and current_user.can("rules.edit"):
        return f"{category_name(rule.category)}（{rule_id}）"
    return category_name(rule.category)


FIELD_NAMES = {
    "title": "标题",
    "category": "分类",
    "body": "正文",
    "tags": "标签",
    "similar": "相似问法",
    "owner": "负责人",
    "review_by": "复审日期",
    "status": "状态",
}


@bp.app_template_filter("no_deduction_reason")
def no_deduction_reason(rule_id: str) -> str:
    """Why a finding that is not waived costs nothing: its rule only reminds, or the
    rule's deductions in this conversation reached its cap (with the current pack)."""
    rule = checker().pack.get(rule_id)
    if rule is None or not rule.weight:
        return "本规则只作提示，不扣分"
    return f"本规则每个会话最多扣 {rule.max_deduction:g} 分，本会话已扣满"


@bp.app_template_filter("field_names")
def field_names(changed: str) -> str:
    """A revision's changed-field list ("title,body") in Chinese."""
    return "、".join(FIELD_NAMES.get(f, f) for f in (changed or "").split(",") if f)
