"""Downloads of saved audit results (coach/exports.py): a run's from its page and
`GET /api/v1/audits/<id>/export`, an agent's or a period's from the export form and
`GET /api/v1/audits/export`.  CSV is generated while it is sent; XLSX is written row
by row (openpyxl write-only) to an anonymous temporary file, then sent from it."""

from __future__ import annotations

import datetime as dt
import tempfile

from flask import (
    Blueprint,
    Response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from coach.exports import FORMATS, TABLES, AuditExport, Scope

from .auth import accounts, actor, requires
from .errors import ApiError
from .supervise import audits

bp = Blueprint("exports", __name__)
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_CHUNK = 64 * 1024
MAX_AGENT_CHARS = 200


@bp.get("/api/v1/audits/<int:run_id>/export")
@requires("coach.audit")
def run_export(run_id: int):
    """A run's saved results: ?format=xlsx (sheets 会话, 问题, 客服) or ?format=csv with
    ?table=findings|conversations|agents.  The run page's download links point here."""
    audits().run(run_id)  # 404 for a run that does not exist
    return _export(Scope(run_id=run_id), str(run_id))


@bp.get("/api/v1/audits/export")
@requires("coach.audit")
def scope_export():
    """Saved results of every run, each conversation once, for ?agent= and/or a
    period of run dates ?since=&until= (YYYY-MM-DD, inclusive); format as above."""
    args = request.args
    scope = Scope.of(agent=args.get("agent"), since=args.get("since"), until=args.get("until"))
    return _export(scope, "*")


@bp.get("/audits/export")
@requires("coach.audit")
def form():
    """The form for an agent's or a period's export; checked here, each message next
    to its field, then sent on to the download."""
    args = {k: (request.args.get(k) or "").strip() for k in ("agent", "since", "until")}
    fmt = request.args.get("format", "xlsx")
    table = request.args.get("table", "findings")
    problems: dict[str, str] = {}
    if "go" in request.args:
        dates = {}
        for name in ("since", "until"):
            if args[name]:
                try:
                    dates[name] = dt.date.fromisoformat(args[name])
                except ValueError:
                    problems[name] = "日期格式应为 2026-11-01"
        if len(dates) == 2 and dates["since"] > dates["until"]:
            problems["until"] = "结束日期不能早于开始日期"
        if len(args["agent"]) > MAX_AGENT_CHARS:
            problems["agent"] = f"客服账号过长（最多 {MAX_AGENT_CHARS} 个字符）"
        if not any(args.values()):
            problems["agent"] = "请填写客服账号，或选择日期范围"
        if fmt not in FORMATS:
            problems["format"] = "请选择 Excel 或 CSV"
        if table not in TABLES:
            problems["format"] = "请选择要导出的表"
        if not problems:
            wanted = {k: v for k, v in args.items() if v}
            return redirect(url_for("exports.scope_export", format=fmt, table=table, **wanted))
    status = 400 if problems else 200
    return render_template(
        "audit_export.html", args=args, fmt=fmt, table=table, problems=problems
    ), status


def _export(scope: Scope, target: str) -> Response:
    fmt = request.args.get("format", "xlsx")
    if fmt not in FORMATS:
        raise ApiError("参数 format 应为 xlsx 或 csv", 400)
    table = request.args.get("table", "findings")
    export = AuditExport(audits().database, scope)
    detail = {"format": fmt, "agent": scope.agent, "since": scope.since, "until": scope.until}
    if fmt == "csv":
        chunks = export.csv(table)  # checks the table before anything is sent
        accounts().audit(actor(), "audit.export", target, {**detail, "table": table})
        response = Response(
            stream_with_context(c.encode("utf-8") for c in chunks),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{scope.filename(fmt, table)}"'},
        )
        response.charset = "utf-8"
        return response
    tmp = tempfile.TemporaryFile()
    try:
        export.write_xlsx(tmp)
        size = tmp.tell()
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    accounts().audit(actor(), "audit.export", target, detail)

    def send():
        try:
            while chunk := tmp.read(FILE_CHUNK):
                yield chunk
        finally:
            tmp.close()

    response = Response(
        send(),
        mimetype=XLSX_MIME,
        headers={
            "Content-Disposition": f'attachment; filename="{scope.filename(fmt)}"',
            "Content-Length": str(size),
        },
    )
    response.call_on_close(tmp.close)
    return response
