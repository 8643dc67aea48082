"""Flask app factory: defaults, then the instance config, then env, then test overrides."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

SETTINGS = (
    # (name, default, help)
    ("INSTANCE", "instance", "实例目录：数据库与索引"),
    (
        "DATABASE_URL",
        "",
        "共享数据库（多节点时用 PostgreSQL，如 postgresql://kbcoach@db/kbcoach）；"
        "留空则用实例目录中的 SQLite 文件",
    ),
    ("MAX_CONTENT_LENGTH", 5 * 1024 * 1024, "请求体上限（字节）"),
    ("SEARCH_MAX_LIMIT", 100, "单次搜索最多返回条数（与 CLI 的 --limit 上限一致）"),
    ("QUERY_MAX_CHARS", 500, "查询文本最大长度"),
    (
        "GAP_SCORE_THRESHOLD",
        6.0,
        "内容缺口：质检会话中的客户问题，最佳文章得分低于此值即视为知识库未能回答"
        "（按本实例的文章量调整）",
    ),
    ("SCRIPTS_DIRS", (), "共享话术之外再加载的话术目录（团队或个人覆盖层）"),
    (
        "TRUSTED_PROXIES",
        0,
        "前面有几层可信反向代理（如 nginx 为 1）：据其 X-Forwarded-For/-Proto/-Host "
        "识别客户端地址与 https；0 表示不信任这些请求头",
    ),
    (
        "SESSION_COOKIE_SECURE",
        False,
        "登录 Cookie 只经 https 发送；为 false 时，请求本身是 https（含可信代理转来的）也会加上",
    ),
    (
        "REVIEW_FORBID_SELF_APPROVE",
        True,
        "审核：禁止审核通过自己最后修改的文章（须由另一位培训师或管理员审核）",
    ),
    ("SESSION_LIFETIME_HOURS", 12, "登录会话的有效期（小时），到期须重新登录"),
    ("INDEX_SYNC_SECONDS", 1.0, "检查数据库变更并补入搜索索引的间隔（秒）；0 为不检查"),
    (
        "AUDIT_LEASE_SECONDS",
        60.0,
        "领取的质检批次多久内有效（秒，检查中自动续期）；节点宕机后，其批次过期即由其他节点接手",
    ),
    (
        "AUDIT_WORKER_SECONDS",
        1.0,
        "本进程查看有无可领取的质检任务（含其他节点发起的批次）的间隔（秒）；0 为不参与，"
        "只检查本进程发起的批次",
    ),
)


class _RowId(IntegerConverter):
    """`<int:…>` in URLs, capped at SQLite's largest integer: a longer number is a
    404 like any unknown id, not an OverflowError deep in a query."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the web app for one instance folder."""
    app = Flask(__name__)
    for name, default, _help in SETTINGS:
        app.config[name] = default
    instance = (
        (test_config or {}).get("INSTANCE") or os.environ.get("KBCOACH_INSTANCE") or "instance"
    )
    app.config["INSTANCE"] = str(Path(instance).resolve())
    app.config.from_pyfile(str(Path(app.config["INSTANCE"]) / "config.py"), silent=True)
    app.config.from_prefixed_env("KBCOACH")
    if test_config:
        app.config.update(test_config)
    app.config["INSTANCE"] = str(Path(app.config["INSTANCE"]).resolve())
    app.json.ensure_ascii = False
    hops = int(app.config["TRUSTED_PROXIES"] or 0)
    if hops > 0:  # only then are X-Forwarded-* believed: anyone can send them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.url_map.converters["int"] = _RowId  # before any route is added

    from core import Settings, open_instance

    services = open_instance(
        Settings(
            instance=Path(app.config["INSTANCE"]),
            database_url=app.config["DATABASE_URL"] or None,
            scripts_dirs=tuple(app.config.get("SCRIPTS_DIRS") or ()),
        )
    )
    app.extensions["services"] = services
    kb = app.extensions["kb"] = services.kb

    from . import (
        admin,
        agents,
        api,
        auth,
        calibration,
        coach,
        errors,
        exports,
        gaps,
        pages,
        reaudit,
        review,
        scripts,
        serving,
        supervise,
        team,
    )

    errors.register(app)
    auth.init_app(app)
    serving.install_request_log(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(coach.bp)
    app.register_blueprint(supervise.bp)
    app.register_blueprint(gaps.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(agents.bp)
    app.register_blueprint(reaudit.bp)
    app.register_blueprint(calibration.bp)
    app.register_blueprint(team.bp)
    scripts.init_app(app)
    if float(app.config["INDEX_SYNC_SECONDS"]) > 0:
        # changes this process did not index itself (other processes, a crash)
        kb.start_sync(float(app.config["INDEX_SYNC_SECONDS"]))
    if float(app.config["AUDIT_WORKER_SECONDS"] or 0) > 0:
        # batches of audit runs, whichever process or node started them
        services.start_worker(
            float(app.config["AUDIT_WORKER_SECONDS"]),
            supervise.app_checkers(app),
            lease=float(app.config["AUDIT_LEASE_SECONDS"]),
        )

    @app.get("/favicon.ico")
    @auth.requires(auth.PUBLIC)
    def favicon():
        return "", 204  # no icon; answering keeps browsers from logging a 404 per page

    @app.get("/healthz")
    @auth.requires(auth.PUBLIC)
    def healthz():
        from storage import UNAVAILABLE

        try:
            return {"ok": True, "articles": kb.store.count()}
        except UNAVAILABLE:  # JSON for load balancers, whatever they accept
            return {"ok": False, "error": "数据库暂时无法连接", "status": 503}, 503

    return app


def services():
    """The app's application core (core.Services)."""
    from flask import current_app

    return current_app.extensions["services"]


def get_kb():
    """The app's knowledge base (store connections are per thread)."""
    from flask import current_app

    return current_app.extensions["kb"]
