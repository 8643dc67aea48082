"""kbcoach command line: a thin click layer over kb/, coach/ and scripts_lib/.

Exit codes: 0 success, 1 errors or findings, 2 usage error, 4 internal error.
Heavy modules are imported inside commands so `kbcoach search` starts fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 4
REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_ARTICLES = REPO_ROOT / "articles"


def fail(message: str, code: int = EXIT_FINDINGS) -> None:
    click.echo(f"错误：{message}", err=True)
    sys.exit(code)


class Context:
    def __init__(self, instance: str, database_url: str | None = None):
        from core import configured_database_url

        self.instance = Path(instance)
        # the option or KBCOACH_DATABASE_URL, else DATABASE_URL of instance/config.py,
        # as the web app reads it: every command acts on the database the server uses
        self.database_url = database_url or configured_database_url(self.instance)
        self._services = None

    @property
    def services(self):
        """The application core for this instance, opened on first use."""
        if self._services is None:
            from core import Settings, open_instance

            self._services = open_instance(
                Settings(instance=self.instance, database_url=self.database_url)
            )
        return self._services

    @property
    def kb(self):
        return self.services.kb


HELP_TEXT = "显示本帮助并退出。"


class _ChineseHelp:
    """Every command's -h/--help option says what it does in Chinese."""

    def get_help_option(self, ctx: click.Context):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_TEXT
        return option


class Command(_ChineseHelp, click.Command):
    pass


class Group(_ChineseHelp, click.Group):
    command_class = Command
    group_class = type  # subgroups are of this class too


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--instance",
    envvar="KBCOACH_INSTANCE",
    default="instance",
    show_default=True,
    type=click.Path(file_okay=False),
    help="实例目录（数据库与索引所在位置），也可用环境变量 KBCOACH_INSTANCE。",
)
@click.option(
    "--database-url",
    envvar="KBCOACH_DATABASE_URL",
    default="",
    help="共享数据库（多节点时用 PostgreSQL，如 postgresql://kbcoach@db/kbcoach），"
    "也可用环境变量 KBCOACH_DATABASE_URL；不给则用实例目录中的 SQLite 文件。",
)
@click.version_option("0.1.0", prog_name="kbcoach", help="显示版本并退出。")
@click.pass_context
def cli(ctx: click.Context, instance: str, database_url: str) -> None:
    """kbcoach：客服知识库与话术质检。"""
    ctx.obj = Context(instance, database_url)


def _audit_import(obj: Context, report, source: str, by: str) -> None:
    """Imports publish articles: they go to the audit log like web edits do."""
    if report.added or report.changed:
        from kb.accounts import Accounts

        Accounts(obj.kb.store).audit(
            by,
            "article.import",
            source,
            {"added": report.added, "changed": report.changed, "failed": report.failed},
        )


def _print_import(report, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    for err in report.errors:
        click.echo(f"  失败 {err}", err=True)
    click.echo(report.summary())
    if report.index:
        mode = {"rebuild": "全量重建", "incremental": "增量更新", "none": "无需更新"}
        click.echo(
            f"索引：{mode.get(report.index.get('mode'), '')} {report.index.get('documents', 0)} 篇"
        )


@cli.command()
@click.option(
    "--articles",
    "articles_dir",
    type=click.Path(exists=True, file_okay=False),
    default=str(DEFAULT_ARTICLES),
    show_default=True,
    help="初始文章目录。",
)
@click.pass_obj
def init(obj: Context, articles_dir: str) -> None:
    """创建实例目录，导入初始文章并建立索引（可重复执行）。

    与 kbcoach import 一样同步：在网页上改过的文章不会被初始文章覆盖（报告为冲突）。"""
    from kb.sync import import_folder

    report = _sync(lambda: import_folder(obj.kb, articles_dir))
    obj.kb.sync_source("scripts")
    click.echo(f"实例：{obj.instance.resolve()}")
    _print_sync(report, as_json=False)
    if not report.ok:
        sys.exit(EXIT_FINDINGS)


def _print_sync(report, *, as_json: bool) -> None:
    """A folder sync's report: one line per article that did not stay as it was (and
    the diff of each conflict), then the counts."""
    from kb.sync import QUIET

    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    if report.dry_run:
        click.echo("演练（--dry-run）：以下是将要进行的操作，没有写入任何内容")
    if report.first_sync and report.conflicts:
        click.echo("提示：此目录与本数据库此前没有同步记录，两边不同的文章报告为冲突")
    for item in report.items:
        if item.action in QUIET:
            continue
        if item.action == "error":
            click.echo(f"  失败 {item.message}", err=True)
            continue
        click.echo(f"  {item.line()}")
        for line in item.diff:
            click.echo(f"      {line}")
    click.echo(report.summary())
    if report.index:
        mode = {"rebuild": "全量重建", "incremental": "增量更新", "none": "无需更新"}
        click.echo(
            f"索引：{mode.get(report.index.get('mode'), '')} {report.index.get('documents', 0)} 篇"
        )


def _sync_audit(obj: Context, report, source: str, by: str) -> None:
    """An import that changed articles goes to the audit log as one entry too (each
    article's own entries are written by the save)."""
    counts = {a: report.count(a) for a in ("created", "updated", "archived", "conflict")}
    if not report.dry_run and (counts["created"] or counts["updated"] or counts["archived"]):
        from kb.accounts import Accounts

        Accounts(obj.kb.store).audit(
            by,
            "article.import",
            source,
            {
                "added": counts["created"],
                "changed": counts["updated"],
                "archived": counts["archived"],
                "conflicts": counts["conflict"],
                "failed": report.failed,
            },
        )


def _sync(run) -> object:
    from kb.errors import KbError

    try:
        return run()
    except KbError as exc:
        fail(str(exc))


@cli.command(name="import")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--by", default="import", show_default=True, help="记录在修订历史和审计日志中的操作人。"
)
@click.option("--dry-run", is_flag=True, help="只列出将要进行的操作，不写入数据库。")
@click.option(
    "--archive-missing",
    is_flag=True,
    help="上次同步后文件被删除（且数据库中未改）的文章改为已归档；默认只报告。",
)
@click.option(
    "--force",
    "force",
    multiple=True,
    metavar="ID",
    help="该文章以文件为准写入数据库（看过冲突后使用），可重复给出。",
)
@click.option(
    "--lint-override",
    default=None,
    metavar="理由",
    help="标准话术检查有错误级问题时仍发布（理由记入审计日志）；不给则这类文章报告为错误、不写入。",
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果。")
@click.pass_obj
def import_cmd(
    obj: Context,
    path: str,
    by: str,
    dry_run: bool,
    archive_missing: bool,
    force,
    lint_override: str | None,
    as_json: bool,
) -> None:
    """把 Markdown 文章目录同步进数据库（与 export 配合，目录可放在 git 中）。

    新文件新增文章；上次同步后改过的文件更新数据库中未改的文章；只在数据库中改过的文章保持不变（export 会写出）。

    文件和数据库都改过的文章报告为冲突（附差异），两边都不覆盖；看过差异后用 --force ID 以文件为准，或用 export --force ID 以数据库为准。

    删除的文件只报告，给出 --archive-missing 才归档。有错误的文件报告文件名和行号，其余照常导入。

    同步记录保存在数据库中，目录由其中的 .kbcoach-sync 文件标识（请一并提交）。退出码：0 成功，1 有冲突或错误。"""
    from kb.errors import KbError
    from kb.phrasing_lint import PublishLint, override_reason
    from kb.sync import import_folder

    reason = None
    if lint_override is not None:
        try:
            reason = override_reason(True, lint_override)
        except KbError as exc:
            fail(f"--lint-override：{exc.message}")
    lint = PublishLint(_TeamChecker(obj), reason)
    report = _sync(
        lambda: import_folder(
            obj.kb,
            path,
            by=by,
            dry_run=dry_run,
            archive_missing=archive_missing,
            force=frozenset(force),
            lint=lint,
        )
    )
    _sync_audit(obj, report, str(path), by)
    _print_sync(report, as_json=as_json)
    if not report.ok:
        sys.exit(EXIT_FINDINGS)


@cli.command(name="import-jsonl")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", default="import", show_default=True, help="记录在修订历史中的操作人。")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果。")
@click.pass_obj
def import_jsonl_cmd(obj: Context, path: str, by: str, as_json: bool) -> None:
    """从 JSONL 批量导入文章（每行 {"id","title","body","category","tags","similar"}）。

    每批一个事务；中途被终止后重新执行同一命令即可续传（已提交的记录报告为未变）。"""
    for run in obj.kb.runs.mark_interrupted():
        click.echo(
            f"提示：上次的 {run['kind']}（{run['source']}）在 {run['started_at'][:19]} "
            "开始后被中断；已提交的批次保留，本次导入将补齐其余部分并修复索引。",
            err=True,
        )

    def progress(rep) -> None:
        click.echo(f"已处理 {rep.added + rep.changed + rep.unchanged + rep.failed} 条", err=True)

    report = obj.kb.import_jsonl(path, by=by, on_progress=progress)
    _audit_import(obj, report, str(path), by)
    _print_import(report, as_json=as_json)
    if report.failed:
        sys.exit(EXIT_FINDINGS)


@cli.command()
@click.argument("dest", type=click.Path(file_okay=False))
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="连同草稿、待审核和已归档的文章一起导出（默认只导出已发布的；已在目录中的文章总会同步）。",
)
@click.option("--dry-run", is_flag=True, help="只列出将要进行的操作，不写入文件。")
@click.option(
    "--force",
    "force",
    multiple=True,
    metavar="ID",
    help="该文章以数据库为准覆盖文件（看过冲突后使用），可重复给出。",
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果。")
@click.pass_obj
def export(obj: Context, dest: str, include_all: bool, dry_run: bool, force, as_json: bool) -> None:
    """把数据库中的文章同步到 Markdown 目录（<分类>/<slug>.md，格式与 import 读取的相同）。

    默认只导出已发布的文章，--all 连同草稿、待审核和已归档的一起导出；已在目录中的文章不论状态总会同步。

    上次同步后在数据库中改过的文章写出到文件；上次同步后改过的文件不会被覆盖（数据库也改过时报告为冲突，附差异）。被删除的文件不会重新写出。

    退出码：0 成功，1 有冲突或错误。"""
    from kb.sync import export_folder

    report = _sync(
        lambda: export_folder(
            obj.kb, dest, include_all=include_all, dry_run=dry_run, force=frozenset(force)
        )
    )
    _print_sync(report, as_json=as_json)
    if not as_json and not dry_run:
        click.echo(f"目录：{dest}")
    if not report.ok:
        sys.exit(EXIT_FINDINGS)


@cli.command()
@click.pass_obj
def index(obj: Context) -> None:
    """全量重建搜索索引（在新目录中构建后原子切换）。"""
    stats = obj.kb.rebuild_index()
    click.echo(
        f"索引已重建：{stats['documents']} 篇，{stats['seconds']:.1f} 秒，"
        f"{stats['bytes'] / 1e6:.1f} MB"
    )


def _terminal_snippet(html_text: str) -> str:
    import html

    text = re.sub(r"<mark>(.*?)</mark>", lambda m: f"【{m.group(1)}】", html_text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


@cli.command()
@click.argument("query", required=False)
@click.option("--category", help="只搜索该分类：product / industry / phrasing / norm。")
@click.option("--tag", help="只搜索带该标签的文章。")
@click.option(
    "--limit",
    "--top",
    "limit",
    default=10,
    show_default=True,
    type=click.IntRange(1, 100),
    help="返回条数。",
)
@click.option(
    "--batch",
    type=click.File("r", encoding="utf-8"),
    help='批量查询文件，每行 {"qid","q"}；输出每行 {"qid","hits","took_ms"}。',
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@click.pass_obj
def search(obj: Context, query, category, tag, limit, batch, as_json) -> None:
    """搜索知识库，例如：kbcoach search "发票怎么开"。"""
    if batch is None and not query:
        fail("请给出查询词，或用 --batch 指定查询文件", EXIT_USAGE)
    from kb.models import CATEGORIES

    if category and category not in CATEGORIES:
        fail(f"未知分类 {category}，可选：{' / '.join(CATEGORIES)}", EXIT_USAGE)
    kb = obj.kb  # pinned answers come first here too, as on the web
    if kb.ensure_index():
        click.echo("索引缺失或版本过旧，已重建", err=True)
    if batch is not None:
        _search_batch(kb, batch, category=category, tag=tag, limit=limit)
        return
    from kb import textproc

    textproc.tokenize("预热")  # load the dictionary first: took_ms is then the query's own
    answer = obj.services.search.answer(
        query, via="cli", category=category, tag=tag, limit=limit, suggest_now=True
    )
    if as_json:
        click.echo(json.dumps({"ok": True, **answer.to_dict()}, ensure_ascii=False))
        return
    if not answer.hits:
        click.echo(f"没有找到与「{query}」相关的文章。")
        if answer.did_you_mean:
            click.echo(f"您是不是要找「{answer.did_you_mean}」？")
        sys.exit(EXIT_FINDINGS)
    for rank, hit in enumerate(answer.hits, 1):
        mark = "【置顶】" if hit["pinned"] else ""
        title = _terminal_snippet(hit["title_html"])
        click.echo(f"{rank}. {mark}{title}  [{hit['category']}] {hit['id']}")
        if hit["snippet"]:
            click.echo(f"   {_terminal_snippet(hit['snippet'])}")
    click.echo(f"共 {answer.total} 条，用时 {answer.took_ms:.1f} 毫秒")


def _search_batch(kb, batch, **kwargs) -> None:
    """One JSON line per good query; bad lines are named on stderr and exit 1."""
    queries: list[tuple[str, str]] = []
    bad = 0
    for lineno, line in enumerate(batch, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            qid, q = str(rec["qid"]), rec["q"]
            if not isinstance(q, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            click.echo(f'错误：{batch.name}:{lineno}: 应为 {{"qid","q"}} 对象，已跳过', err=True)
            bad += 1
            continue
        queries.append((qid, q))
    results = kb.search_many([q for _, q in queries], via="cli-batch", snippets=False, **kwargs)
    out = sys.stdout
    for (qid, _), res in zip(queries, results, strict=True):
        out.write(
            json.dumps(
                {"qid": qid, "hits": [h.id for h in res.hits], "took_ms": round(res.took_ms, 3)},
                ensure_ascii=False,
            )
            + "\n"
        )
    if bad:
        sys.exit(EXIT_FINDINGS)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--articles",
    "articles_dir",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_ARTICLES),
    help="首次启动时导入的文章目录。",
)
@click.option("--prod", is_flag=True, help="用 gunicorn 多进程运行（生产环境）。")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="--prod 时的工作进程数。",
)
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="--prod 时每个进程的线程数（GIL 下 2 个线程的尾延迟最好，需要更多并发时加进程）。",
)
@click.pass_obj
def serve(
    obj: Context, host: str, port: int, articles_dir: str, prod: bool, workers: int, threads: int
) -> None:
    """启动网页与 JSON API（首次启动自动导入初始文章）。"""
    kb = obj.kb
    if kb.store.count() == 0 and Path(articles_dir).is_dir():
        from kb.sync import import_folder

        report = import_folder(kb, articles_dir)
        click.echo(f"首次启动，已导入初始文章：{report.summary()}")
    elif kb.ensure_index():
        click.echo("索引缺失或版本过旧，已重建")
    kb.sync_source("scripts")  # here, so that the workers find the scripts already indexed
    click.echo(f"kbcoach 运行于 http://{host}:{port}/  （实例 {obj.instance.resolve()}）")
    click.echo(_login_hint(obj))
    if prod:
        from storage.database import close_all
        from web.serving import run_production

        obj.kb.close()
        close_all()  # the workers open their own connections after the fork
        run_production(
            str(obj.instance.resolve()), host, port, workers, threads, obj.database_url or ""
        )
        return
    from web import create_app

    config = {"INSTANCE": str(obj.instance)}
    if obj.database_url:
        config["DATABASE_URL"] = obj.database_url
    app = create_app(config)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _accounts(obj: Context):
    from kb.accounts import Accounts

    return Accounts(obj.kb.store)


def _login_hint(obj: Context) -> str:
    """Create the first admin on a fresh instance; say how to log in."""
    from kb.accounts import random_password
    from kb.store import make_private

    acc = _accounts(obj)
    path = obj.instance / "initial_admin_password.txt"
    make_private(path)  # one written by an older version may be readable by all
    if acc.count() == 0:
        password = random_password()
        acc.add("admin", password, ["admin", "trainer", "supervisor", "agent"], actor="setup")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        return (
            f"首次登录：用户名 admin，密码 {password}（已保存到 {path}，"
            "登录后点右上角的用户名修改密码，或用 kbcoach user passwd admin）"
        )
    return f"已有 {acc.count()} 个账号；忘记密码可用 kbcoach user passwd 用户名 重设。"


@cli.group()
def user() -> None:
    """账号管理：添加、改密码、停用、查看。"""


def _password_option(f):
    return click.option(
        "--password",
        prompt="密码",
        hide_input=True,
        confirmation_prompt="再次输入密码",
        help="密码（不给出时交互输入）。",
    )(f)


def _roles_option(help_text: str):
    from kb.models import ROLES

    return click.option(
        "--role", "roles", multiple=True, required=True, type=click.Choice(ROLES), help=help_text
    )


@user.command(name="add")
@click.argument("username")
@_roles_option("角色，可重复给出多个。")
@_password_option
@click.pass_obj
def user_add(obj: Context, username: str, roles: tuple[str, ...], password: str) -> None:
    """添加账号，例如：kbcoach user add xiaowang --role agent。"""
    u = _accounts(obj).add(username, password, list(roles), actor="cli")
    click.echo(f"已添加 {u.username}（{','.join(u.roles)}）")


@user.command(name="passwd")
@click.argument("username")
@_password_option
@click.option("--must-change", is_flag=True, help="下次登录后须先修改密码（临时密码）。")
@click.pass_obj
def user_passwd(obj: Context, username: str, password: str, must_change: bool) -> None:
    """重设账号密码（同时结束该账号的全部登录会话）。"""
    _accounts(obj).set_password(username, password, actor="cli", must_change=must_change)
    click.echo(f"已更新 {username} 的密码" + ("；下次登录后须先修改" if must_change else ""))


@user.command(name="roles")
@click.argument("username")
@_roles_option("新的角色集合。")
@click.pass_obj
def user_roles(obj: Context, username: str, roles: tuple[str, ...]) -> None:
    """修改账号的角色。"""
    _accounts(obj).set_roles(username, list(roles), actor="cli")
    click.echo(f"{username} 的角色：{','.join(roles)}")


@user.command(name="disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="重新启用。")
@click.pass_obj
def user_disable(obj: Context, username: str, enable: bool) -> None:
    """停用账号（同时吊销其全部令牌、结束其全部登录会话）；--enable 重新启用。"""
    _accounts(obj).set_disabled(username, not enable, actor="cli")
    if enable:
        click.echo(f"已启用 {username}（停用时吊销的 API 令牌不会恢复，请用 token create 新建）")
    else:
        click.echo(f"已停用 {username}：其 API 令牌已全部吊销，登录会话已全部结束")


@user.command(name="logout-all")
@click.argument("username")
@click.pass_obj
def user_logout_all(obj: Context, username: str) -> None:
    """让账号在所有浏览器上退出登录（API 令牌不受影响，需另行吊销）。"""
    n = _accounts(obj).end_all_sessions(username, actor="cli")
    click.echo(f"已结束 {username} 的 {n} 个登录会话")


@user.command(name="list")
@click.pass_obj
def user_list(obj: Context) -> None:
    """列出全部账号。"""
    for u in _accounts(obj).list():
        click.echo(f"{u.username}\t{','.join(u.roles)}\t{'停用' if u.disabled else '正常'}")


@cli.group(name="team-agents")
def team_agents() -> None:
    """客服名单：导出会话记录中客服的发送人名称（可作为账号的别名），每次上传和 audit run 都会用到。"""


def _team(obj: Context):
    from core.team_agents import TeamAgents

    return TeamAgents(obj.kb.store, _accounts(obj))


@team_agents.command(name="list")
@click.pass_obj
def team_agents_list(obj: Context) -> None:
    """列出客服名单：发送人名称、账号（没有时为 -）。"""
    for row in _team(obj).list():
        click.echo(f"{row['name']}\t{row['username'] or '-'}")


@team_agents.command(name="add")
@click.argument("name")
@click.option("--account", default="", help="该名称对应的账号（登录名）：会话归到该账号名下。")
@click.pass_obj
def team_agents_add(obj: Context, name: str, account: str) -> None:
    """添加客服的发送人名称，例如：kbcoach team-agents add 售后阿青 --account aqing。"""
    row = _team(obj).add(name, account, actor="cli")
    click.echo(f"已添加 {row['name']}" + (f"（账号 {row['username']}）" if row["username"] else ""))


@team_agents.command(name="remove")
@click.argument("name")
@click.pass_obj
def team_agents_remove(obj: Context, name: str) -> None:
    """从客服名单中删除一个发送人名称。"""
    team = _team(obj)
    row = next((r for r in team.list() if r["name"] == name.strip()), None)
    if row is None:
        fail(f"客服名单中没有「{name}」")
    team.remove(row["id"], actor="cli")
    click.echo(f"已删除 {row['name']}")


@cli.group()
def token() -> None:
    """API 令牌：供聊天工作台等集成以 Authorization: Bearer 调用。"""


@token.command(name="create")
@click.argument("username")
@click.option("--name", default="", help="令牌用途说明。")
@click.pass_obj
def token_create(obj: Context, username: str, name: str) -> None:
    """为账号创建新令牌（只显示这一次），权限同该账号的角色。"""
    click.echo(_accounts(obj).create_token(username, name, actor="cli"))


@token.command(name="revoke")
@click.argument("token_or_id")
@click.pass_obj
def token_revoke(obj: Context, token_or_id: str) -> None:
    """吊销令牌（给出令牌本身或其编号）。"""
    _accounts(obj).revoke_token(token_or_id, actor="cli")
    click.echo("已吊销")


@token.command(name="list")
@click.argument("username")
@click.pass_obj
def token_list(obj: Context, username: str) -> None:
    """列出账号的令牌（不显示令牌本身）。"""
    for t in _accounts(obj).tokens(username):
        state = f"已吊销 {t['revoked_at'][:19]}" if t["revoked_at"] else "有效"
        click.echo(f"{t['id']}\t{t['name']}\t{t['created_at'][:19]}\t{state}")


@cli.command()
@click.argument("dest", type=click.Path())
@click.pass_obj
def backup(obj: Context, dest: str) -> None:
    """在线备份数据库（SQLite 备份接口，服务运行中也可执行）。DEST 可为目录或文件。

    PostgreSQL 实例请用 pg_dump 备份。"""
    from storage.backup import PG_MESSAGE
    from storage.backup import backup as do_backup

    if obj.kb.database.dialect != "sqlite":
        fail(PG_MESSAGE)
    path = do_backup(obj.kb.database, dest)
    click.echo(f"已备份到 {path}")


@cli.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="确认覆盖当前数据库。")
@click.pass_obj
def restore(obj: Context, src: str, yes: bool) -> None:
    """从备份恢复数据库并重建索引（请先停止服务）。"""
    from storage.backup import PG_MESSAGE
    from storage.backup import restore as do_restore

    if obj.kb.database.dialect != "sqlite":
        fail(PG_MESSAGE)
    if not yes:
        fail("恢复会覆盖当前数据库，请加 --yes 确认", EXIT_USAGE)
    obj.kb.close()
    do_restore(src, obj.kb.database)
    stats = obj.kb.rebuild_index()
    click.echo(f"已从 {src} 恢复，索引重建 {stats['documents']} 篇")


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.pass_obj
def runs(obj: Context, limit: int) -> None:
    """列出最近的导入与重建任务（被中断的任务标记为 interrupted）。"""
    kb = obj.kb
    kb.runs.mark_interrupted()
    for r in kb.runs.recent(limit):
        click.echo(f"{r['id']}\t{r['kind']}\t{r['status']}\t{r['started_at'][:19]}\t{r['source']}")


@cli.command()
@click.option(
    "--scan", is_flag=True, help="先分析尚未分析的已质检会话，找出知识库未能回答的客户问题。"
)
@click.option(
    "--scan-limit",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="本次最多分析多少个会话。",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="最佳文章得分低于此值即视为未能回答（默认同网页设置 GAP_SCORE_THRESHOLD 的默认值 6）。",
)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="每部分最多列出多少组。",
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@click.pass_obj
def gaps(obj: Context, scan: bool, scan_limit: int, threshold, limit: int, as_json: bool) -> None:
    """内容缺口：最近 30 天客服搜不到或无人打开结果的搜索，以及质检会话中知识库未能回答的客户问题（按相同的词归组）。"""
    from core import gaps as core_gaps
    from kb import gaps as kb_gaps

    services = obj.services
    scanned = None
    if scan:
        scanned = core_gaps.scan_transcripts(
            services, limit=scan_limit, threshold=threshold or core_gaps.ANSWER_THRESHOLD
        )
    db = services.kb.database
    searches = [g.to_dict() for g in kb_gaps.search_groups(db)]
    questions = [g.to_dict() for g in kb_gaps.question_groups(db)]
    if as_json:
        body = {
            "searches": searches[:limit],
            "search_groups": len(searches),
            "questions": questions[:limit],
            "question_groups": len(questions),
            "pending": core_gaps.pending(services),
        }
        if scanned is not None:
            body["scanned"] = scanned
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    if scanned is not None:
        click.echo(
            f"已分析 {scanned['scanned']} 个质检会话，发现 {scanned['questions']} 个未能回答的客户问题，"
            f"还有 {scanned['left']} 个待分析"
        )
    click.echo(f"搜不到或无人打开的搜索（{len(searches)} 组）：次数 / 无结果 / 打开 / 最近 / 问题")
    for g in searches[:limit]:
        click.echo(f"{g['count']}\t{g['zero']}\t{g['opens']}\t{g['last_seen'][:16]}\t{g['query']}")
    click.echo(f"知识库未能回答的客户问题（{len(questions)} 组）：次数 / 最近 / 问题")
    for g in questions[:limit]:
        click.echo(f"{g['count']}\t{g['last_seen'][:16]}\t{g['query']}")


# --- coach commands ---------------------------------------------------------


def _input_options(f):
    """--agent, --agent-pattern, --mapping and --format-in: how to read the input."""
    f = click.option(
        "--format-in",
        "format_in",
        default=None,
        help="强制输入格式（默认按内容识别）：jsonl csv xlsx chatlog memotrace-txt "
        "memotrace-csv qq wecom qiyu feishu chatwoot。",
    )(f)
    f = click.option(
        "--mapping",
        type=click.Path(dir_okay=False),
        help="映射文件（YAML）：其他系统的 JSON/CSV 导出中，会话、发送人、角色、时间、内容各是哪个字段。",
    )(f)
    f = click.option(
        "--agent-pattern",
        default=None,
        help="客服名称规则（正则表达式，匹配发送人名称），例如 '^(售后|客服)'。",
    )(f)
    f = click.option(
        "--agent",
        "--speaker-agent",
        "agents",
        multiple=True,
        help="客服的发送人名称（可重复给出，或用逗号分隔）；导出中客服名称不以“客服”开头时必须给出。"
        "通话转写中为客服（坐席）的说话人标签，如 坐席、spk1（默认按标签词和先说话者判断）。",
    )(f)
    return f


def _load_options(agents, agent_pattern, mapping, format_in) -> dict:
    """Loader options, or exit 2 with the Chinese reason."""
    from coach.report import UsageError, load_options

    try:
        return load_options(agents, agent_pattern, mapping, format_in)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json", "csv", "xlsx"]),
    help="报告格式。",
)
@click.option(
    "--rules",
    "rules_paths",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="团队规则覆盖文件（YAML），可重复给出。",
)
@click.option(
    "--min-level",
    default="info",
    show_default=True,
    type=click.Choice(["info", "warning", "error", "fatal"]),
    help="只输出该级别及以上的问题。",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="写入文件（xlsx 必须给出）。")
@_input_options
def check(paths, fmt, rules_paths, min_level, output, agents, agent_pattern, mapping, format_in):
    """质检会话记录：PATH 可为文件、目录或 -（标准输入）；格式 JSONL / CSV / XLSX /
    聊天记录文本（微信 MemoTrace、QQ 消息管理器）/ 企业微信会话存档、七鱼、飞书、Chatwoot 的 JSON /
    通话转写（带说话人和起止时间的语句段，JSON 或 CSV）。

    没有客服发言的会话不打分，列为无法质检（并列出找到的发送人）。

    退出码：0 无问题，1 有问题（或有记录无法读取、无法质检），2 用法错误，4 内部错误。
    """
    from coach.report import run_check

    load = _load_options(agents, agent_pattern, mapping, format_in)

    progress = None
    bar = None
    if sys.stderr.isatty():
        bar = click.progressbar(length=0, label="质检中", file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

    try:
        code = run_check(
            list(paths), fmt, list(rules_paths), min_level, output, progress=progress, load=load
        )
    finally:
        if bar is not None:
            bar.render_finish()
    sys.exit(code)


# --- audit runs, team rules and the audit log -------------------------------


def _workspace(obj: Context):
    """(AuditStore, RuleBook) of the instance, logging to the audit log as `cli`."""
    from coach.audits import AuditStore
    from coach.rulebook import RuleBook
    from kb.accounts import Accounts

    store = obj.kb.store
    acc = Accounts(store)
    annotate = obj.services.kb_answers.annotate  # 知识库中有答案 (core/kb_answer.py)
    return AuditStore(store, log=acc.audit, annotate=annotate), RuleBook(store, obj.instance)


class _TeamChecker:
    """The instance's current team rule pack as a Checker, built on first use (an
    import that publishes no phrasing or norm article never loads the coach)."""

    def __init__(self, obj: Context):
        self._obj = obj
        self._checker = None

    def __getattr__(self, name: str):
        if self._checker is None:
            from coach.checker import Checker

            _, books = _workspace(self._obj)
            self._checker = Checker(books.pack(books.version()))
        return getattr(self._checker, name)


def _check_run(audits, books, run_id: int, as_json: bool) -> None:
    from coach.checker import Checker

    run = audits.run(run_id)
    if (audits.retry_upload(run_id) or run["reading"]) and audits.read_upload(run_id):
        run = audits.run(run_id)  # a web upload's files, read here: running (or done)
    elif not audits.claim(run_id):
        fail(f"质检批次 {run_id} 状态为「{run['label']}」，无法开始")
    checker = Checker(books.pack(run["rules_version"]))

    shown = [run["checked"]]

    def progress(done: int, total: int) -> None:  # about 20 lines for a whole run
        if done == total or done - shown[0] >= total / 20:
            shown[0] = done
            click.echo(f"已检查 {done}/{total}", err=True)

    run = audits.check(run_id, checker, progress=progress)
    agents = audits.agents(run_id)
    if as_json:
        click.echo(json.dumps({"run": run, "agents": agents}, ensure_ascii=False))
    else:
        click.echo(
            f"质检批次 {run_id}：{run['checked']}/{run['total']} 个会话，{run['errors']} 条无法读取"
        )
        for a in agents:
            click.echo(f"  {a['agent']}\t平均 {a['mean_score']}\t会话 {a['conversations']}")
    if run["errors"]:
        sys.exit(EXIT_FINDINGS)  # like `check`: some records could not be read


@cli.group()
def audit() -> None:
    """质检批次：保存结果、可中断续检、申诉。"""


@audit.command(name="run")
@click.argument("paths", nargs=-1, required=True)
@click.option("--name", default="", help="批次名称（默认取文件名）。")
@click.option("--by", default="cli", show_default=True, help="记录在审计日志中的操作人。")
@click.option(
    "--reaudit", is_flag=True, help="重新质检已质检过的会话（默认跳过：会话ID相同或内容相同）。"
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果。")
@_input_options
@click.pass_obj
def audit_run(
    obj: Context,
    paths,
    name: str,
    by: str,
    reaudit: bool,
    as_json: bool,
    agents,
    agent_pattern,
    mapping,
    format_in,
) -> None:
    """导入会话记录（文件、目录或 -）并质检，结果保存在实例中。

    实例中设置的客服名单（网页“客服名单”：发送人名称及其账号）与 --agent 一起使用。
    没有客服发言的会话记为无法读取（附找到的发送人），不打分。"""
    from coach.audits import AuditError
    from coach.report import UsageError, import_options
    from coach.transcripts import load_path
    from core.team_agents import TeamAgents

    try:
        options = import_options(agents, agent_pattern, mapping, format_in)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)
    # the team's agent names and aliases (/settings/agents) count as for an upload
    load = TeamAgents(obj.kb.store).apply(options).loader()
    convs, errors = [], []
    for p in paths:
        c, e = load_path(p, **load)
        convs.extend(c)
        errors.extend(e)
    for e in errors:
        click.echo(f"{e.path}:{e.line}: {e.reason}", err=True)
    audits, books = _workspace(obj)
    try:
        run_id = audits.create_run(
            name or ", ".join(Path(p).name for p in paths),
            convs,
            errors,
            by=by,
            rules_version=books.version(),
            reaudit=reaudit,
        )
    except AuditError as exc:
        fail(str(exc))
    dupes = audits.duplicate_count(run_id)
    click.echo(f"质检批次 {run_id}：{len(convs) - dupes} 个会话", err=True)
    if dupes:
        click.echo(f"重复会话 {dupes} 个，已跳过（--reaudit 可重新质检）", err=True)
    _check_run(audits, books, run_id, as_json)


@audit.command(name="resume")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果。")
@click.pass_obj
def audit_resume(obj: Context, run_id: int, as_json: bool) -> None:
    """继续一个被中断的质检批次（只检查尚未检查的会话）。"""
    from coach.audits import AuditError

    audits, books = _workspace(obj)
    try:
        _check_run(audits, books, run_id, as_json)
    except AuditError as exc:
        fail(str(exc))


@audit.command(name="work")
@click.option("--once", is_flag=True, help="没有可领取的批次时退出（默认一直等待）。")
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 3600),
    help="没有可领取的批次时，隔多少秒再看一次。",
)  # fmt: skip
@click.pass_obj
def audit_work(obj: Context, once: bool, interval: float) -> None:
    """帮助检查正在进行的质检批次（不论由哪个进程或节点发起），逐批领取并保存。"""
    import time

    from coach.audits import new_claimer
    from coach.checker import Checker

    audits, books = _workspace(obj)
    checkers: dict[int, Checker] = {}

    def checker_for(version: int) -> Checker:
        if version not in checkers:
            checkers[version] = Checker(books.pack(version))
        return checkers[version]

    claimer, total = new_claimer(), 0
    try:
        while True:
            checked = audits.work(checker_for, claimer=claimer)
            total += checked
            if checked:
                click.echo(f"已检查 {total} 个会话", err=True)
            elif once:
                break
            else:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    click.echo(f"共检查 {total} 个会话", err=True)


@audit.command(name="export")
@click.argument("run_id", type=int, required=False)
@click.option(
    "--format", "fmt", default="xlsx", show_default=True, type=click.Choice(["xlsx", "csv"]),
    help="xlsx：会话、问题、客服三张表；csv：一张表（见 --table）。",
)  # fmt: skip
@click.option(
    "--table", default="findings", show_default=True,
    type=click.Choice(["findings", "conversations", "agents"]), help="csv 导出哪张表。",
)  # fmt: skip
@click.option("--agent", help="只导出该客服（不给 RUN_ID 时跨批次，每个会话只算一次）。")
@click.option("--since", help="批次日期起（含），如 2026-11-01。")
@click.option("--until", help="批次日期止（含），如 2026-11-30。")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="写入文件。")
@click.pass_obj
def audit_export(obj: Context, run_id, fmt, table, agent, since, until, output) -> None:
    """导出已保存的质检结果：一个批次（RUN_ID），或按客服、日期范围跨批次导出。"""
    from coach.audits import AuditError
    from coach.exports import AuditExport, ExportError, Scope

    audits, _ = _workspace(obj)
    try:
        if run_id is not None:
            audits.run(run_id)
        scope = Scope.of(run_id, agent, since, until)
    except (AuditError, ExportError) as exc:
        fail(str(exc), EXIT_USAGE)
    export = AuditExport(audits.database, scope)
    if fmt == "xlsx":
        export.write_xlsx(output)
    else:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            for chunk in export.csv(table):
                fh.write(chunk)
    audits.log(
        "cli",
        "audit.export",
        str(run_id) if run_id is not None else "*",
        {"format": fmt, "agent": agent, "since": since, "until": until, "file": Path(output).name},
    )
    click.echo(f"已导出到 {output}", err=True)


@audit.command(name="list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.pass_obj
def audit_list(obj: Context, limit: int) -> None:
    """列出最近的质检批次：编号、状态、已检查/总数、创建时间、名称（进程已退出的运行中批次标记为已中断）。"""
    audits, _ = _workspace(obj)
    for r in audits.runs(limit):
        click.echo(
            f"{r['id']}\t{r.get('label') or r['status']}\t{r['checked']}/{r['total']}\t"
            f"{r['created_at'][:19]}\t{r['name']}"
        )


@cli.group()
def rules() -> None:
    """团队规则覆盖层：查看、校验、保存（每个版本都保留）。"""


@rules.command(name="show")
@click.pass_obj
def rules_show(obj: Context) -> None:
    """打印当前团队规则覆盖层。"""
    _, books = _workspace(obj)
    row = books.current()
    click.echo(row["yaml"] if row else "# 尚未设置团队规则，使用默认规则包")


@rules.command(name="save")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", default="cli", show_default=True, help="记录在审计日志中的操作人。")
@click.option("--note", default="", help="本次修改说明。")
@click.pass_obj
def rules_save(obj: Context, path: str, by: str, note: str) -> None:
    """校验并保存 PATH 为新的团队规则版本。"""
    from coach.rules import RuleError

    audits, books = _workspace(obj)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        fail(f"{path}: 不是 UTF-8 文本", EXIT_USAGE)
    if books.unchanged(text):
        click.echo("与当前团队规则相同，未保存新版本")
        return
    try:
        version = books.save(text, by=by, note=note)
    except RuleError as exc:
        fail("\n".join(exc.problems), EXIT_USAGE)
    audits.log(by, "rules.update", f"v{version}", {"note": note[:200], "file": Path(path).name})
    click.echo(f"已保存团队规则 v{version}")


@cli.command()
@click.pass_obj
def migrate(obj: Context) -> None:
    """把数据库结构升级到当前版本（服务启动时也会自动执行；可重复执行）。"""
    from storage import Database
    from storage.database import sqlite_url

    if not obj.database_url:
        obj.instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(obj.database_url or sqlite_url(obj.instance), migrate=False)
    try:
        before, after = db.migrate()
    finally:
        db.engine.dispose()
    where = db.display_url
    if before == after:
        click.echo(f"数据库已是最新结构（{after}）：{where}")
    else:
        click.echo(f"数据库结构已从 {before or '（无版本记录）'} 升级到 {after}：{where}")


@cli.command(name="copy-instance")
@click.option(
    "--to",
    "target_url",
    required=True,
    help="目标数据库地址，如 postgresql://kbcoach@db/kbcoach（须已创建、可为空库）。",
)
@click.pass_obj
def copy_instance(obj: Context, target_url: str) -> None:
    """把本实例的数据库整体复制到另一个数据库（保留编号、核对行数，可重复执行）。"""
    from storage import Database, DatabaseError
    from storage.copy import copy_database
    from storage.database import normalize_url, sqlite_url

    source_url = obj.database_url or sqlite_url(obj.instance)
    try:
        same = normalize_url(target_url) == normalize_url(source_url)
    except DatabaseError as exc:
        fail(str(exc), EXIT_USAGE)
    if same:
        where = (
            "（当前数据库来自 --database-url、KBCOACH_DATABASE_URL 或实例的 config.py；"
            "复制前请先去掉它，让命令读实例目录中的 SQLite 文件）"
            if obj.database_url
            else ""
        )
        fail(f"目标数据库就是当前数据库{where}", EXIT_USAGE)
    try:
        source, target = Database(source_url), Database(target_url)
    except DatabaseError as exc:
        fail(str(exc), EXIT_USAGE)
    report = copy_database(source, target)
    for name, (n_source, added, removed) in report.tables.items():
        extra = f"\t删除 {removed} 行" if removed else ""
        click.echo(f"{name}\t源 {n_source} 行\t新增 {added} 行{extra}")
    if not report.ok:
        fail(f"以下表的行数与源不一致：{', '.join(report.mismatched)}")
    click.echo(f"已复制到 {target.display_url}，各表与源一致（改动过的行已更新）。")


@cli.command(name="export-sqlite")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="DEST 已存在时覆盖它。")
@click.pass_obj
def export_sqlite_cmd(obj: Context, dest: str, force: bool) -> None:
    """把数据库导出为独立的 SQLite 文件（可用 Datasette 打开分析；不含密码、令牌与会话）。"""
    from storage.export import export_sqlite

    target = Path(dest).resolve()
    live = obj.kb.database.path
    if live is not None and target in {
        live.resolve(),
        *(Path(f"{live}{x}").resolve() for x in ("-wal", "-shm")),
    }:
        fail(f"{dest} 是本实例正在使用的数据库，请换一个文件名", EXIT_USAGE)
    if not target.parent.is_dir():
        fail(f"目录不存在：{target.parent}", EXIT_USAGE)
    if target.exists() and not force:
        fail(f"{dest} 已存在；确认要覆盖请加 --force", EXIT_USAGE)
    counts = export_sqlite(obj.kb.database, target)
    click.echo(f"已导出到 {dest}：{len(counts)} 张表，共 {sum(counts.values())} 行")


@cli.command(name="audit-log")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@click.option("--actor", default="", help="只看此操作人。")
@click.option(
    "--action", default="", help="只看此操作（如 user.add；以 . 结尾为一类，如 token.）。"
)
@click.option("--target", default="", help="只看此对象。")
@click.option("--from", "date_from", default="", help="开始日期（UTC，年-月-日）。")
@click.option("--to", "date_to", default="", help="结束日期（UTC，年-月-日，含当天）。")
@click.pass_obj
def audit_log(
    obj: Context,
    limit: int,
    as_json: bool,
    actor: str,
    action: str,
    target: str,
    date_from: str,
    date_to: str,
) -> None:
    """审计日志：谁在何时做了什么（只增不改），可按操作人、操作、对象、日期筛选。"""
    from core.auditlog import AuditFilter
    from kb.accounts import Accounts

    args = {"actor": actor, "action": action, "target": target, "from": date_from, "to": date_to}
    filt = AuditFilter.from_args(args)
    if filt.errors:
        fail("；".join(filt.errors.values()), EXIT_USAGE)
    entries = Accounts(obj.kb.store).audit_entries(limit, 0, filt.where())
    for e in entries:
        if as_json:
            click.echo(json.dumps({**e, "detail": json.loads(e["detail"])}, ensure_ascii=False))
        else:
            click.echo(f"{e['at'][:19]}\t{e['actor']}\t{e['action']}\t{e['target']}\t{e['detail']}")


# click's own messages, said in Chinese (its types word their complaints in English)
_VALUE_MESSAGES = [
    (re.compile(r"^'(.*)' is not a valid integer( range)?\.?$"), "「{0}」不是整数"),
    (re.compile(r"^'(.*)' is not a valid float( range)?\.?$"), "「{0}」不是数字"),
    (re.compile(r"^'(.*)' is not one of (.*)\.$"), "「{0}」不是可选值（可选：{1}）"),
    (re.compile(r"^'(.*)' is not (.*)\.$"), "「{0}」不是可选值（可选：{1}）"),
    (re.compile(r"^(.*) is not in the range (.*)\.$"), "{0} 超出范围（{1}）"),
    (re.compile(r"^\w+ '(.*)' does not exist\.$"), "路径「{0}」不存在"),
    (re.compile(r"^\w+ '(.*)' is a directory\.$"), "「{0}」是目录，这里需要文件"),
    (re.compile(r"^\w+ '(.*)' is a file\.$"), "「{0}」是文件，这里需要目录"),
    (re.compile(r"^\w+ '(.*)' is not readable\.$"), "「{0}」不可读"),
    (re.compile(r"^\w+ '(.*)' is not writable\.$"), "「{0}」不可写"),
]


def _value_message(message: str) -> str:
    for pattern, chinese in _VALUE_MESSAGES:
        m = pattern.match(message)
        if m:
            return chinese.format(*m.groups())
    return message  # our own checks already speak Chinese


def usage_message(exc: click.UsageError) -> str:
    """The one-line Chinese reason for a usage error."""
    if isinstance(exc, click.NoSuchOption):
        hint = f"（是否想用 {'、'.join(exc.possibilities)}）" if exc.possibilities else ""
        return f"没有选项 {exc.option_name}{hint}"
    if isinstance(exc, click.MissingParameter):
        param = exc.param
        if param is not None and param.param_type_name == "option":
            return f"缺少选项 {' / '.join(param.opts)}"
        name = param.human_readable_name if param is not None else ""
        return f"缺少参数 {name}".rstrip()
    if isinstance(exc, click.BadParameter):
        if exc.param is not None and exc.ctx is not None:
            name = exc.param.get_error_hint(exc.ctx)
        else:
            name = exc.param_hint if isinstance(exc.param_hint, str) else ""
        name = (name or "").replace("'", "")
        return f"参数 {name} 的值无效：{_value_message(exc.message)}"
    message = exc.format_message()
    if isinstance(exc, click.BadOptionUsage) and message.endswith("requires an argument."):
        return f"选项 {exc.option_name} 需要一个值"
    m = re.match(r"^No such command '(.*)'\.$", message)
    if m:
        return f"没有命令「{m[1]}」"
    m = re.match(r"^Got unexpected extra arguments? \((.*)\)$", message)
    if m:
        return f"多余的参数：{m[1]}"
    return message


def _show_usage_error(exc: click.UsageError) -> None:
    ctx = exc.ctx
    if ctx is not None:
        usage = ctx.get_usage().replace("Usage: ", "用法：", 1)
        click.echo(f"{usage}\n运行 '{ctx.command_path} --help' 查看帮助。\n", err=True)
    click.echo(f"错误：{usage_message(exc)}", err=True)


def main() -> None:
    """Console-script entry: named exit codes, no stack trace for users."""
    try:
        cli.main(standalone_mode=False, prog_name="kbcoach")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _show_usage_error(exc)
        sys.exit(EXIT_USAGE)
    except click.Abort:
        click.echo("已中止", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_FINDINGS)
    except Exception as exc:  # noqa: BLE001 - last line of defence
        from kb.errors import KbError

        if isinstance(exc, KbError):
            click.echo(f"错误：{exc}", err=True)
            sys.exit(EXIT_FINDINGS)
        from storage import UNAVAILABLE, reason

        if isinstance(exc, UNAVAILABLE) and not os.environ.get("KBCOACH_DEBUG"):
            click.echo(f"错误：无法连接数据库：{reason(exc)}", err=True)
            sys.exit(EXIT_FINDINGS)
        if os.environ.get("KBCOACH_DEBUG"):
            raise
        click.echo(f"内部错误：{type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)


if __name__ == "__main__":
    main()
