"""Files round trip (issue 12 item 11): `kbcoach export` / `kbcoach import` keep a folder
of Markdown and the database in step; a change on both sides is a conflict, never an
overwrite.  Real SQLite (and PostgreSQL where the sync state is stored), real folders,
the real command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from .conftest import run_cli

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

CHANGED_LINE = "签收之日起七天内，商品完好即可申请退货，运费由买家承担。"
TEN_DAYS = CHANGED_LINE.replace("七天内", "十天内")

RETURNS = """---
id: product-tuihuo-zhengce
title: 七天无理由退货政策
category: product
tags: [退货, 七天无理由]
similar:
  - 买了不想要了能退吗
  - 七天内可以退货吗
owner: 知识管理组
review_by: 2027-06-30
status: published
---
# 七天无理由退货

签收之日起七天内，商品完好即可申请退货，运费由买家承担。
"""

GREETING = """---
id: phrasing-kaichang-wenhou
title: 开场问候
category: phrasing
tags: [问候]
---
您好，我是客服小王，很高兴为您服务，请问有什么可以帮您？
"""

DRAFT = """---
id: product-caogao
title: 以旧换新（草稿）
category: product
status: draft
---
还在写。
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A team's folder: Chinese titles, tags and file names, a draft."""
    root = tmp_path / "团队知识库"
    write(root, "product/退货政策.md", RETURNS)
    write(root, "phrasing/开场问候.md", GREETING)
    write(root, "product/caogao.md", DRAFT)
    return root


def open_kb(instance: Path, database_url: str | None = None):
    from kb.service import KnowledgeBase

    return KnowledgeBase(instance, database_url=database_url)


def editor_save(instance: Path, article_id: str, by: str = "trainer1", **fields) -> int:
    """Change an article as the web editor does (compare-and-set on the version read)."""
    from kb.authoring import save_article

    kb = open_kb(instance)
    try:
        version = kb.store.get_meta_row(article_id)["version"]
        save_article(kb, article_id, fields, by, base_version=version)
        return kb.store.get_meta_row(article_id)["version"]
    finally:
        kb.close()


def stored(instance: Path, article_id: str):
    kb = open_kb(instance)
    try:
        found = kb.store.find(article_id)
        return found if found is None else (found[0], found[1]["version"])
    finally:
        kb.close()


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".kbcoach-sync"
    }


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def kbcoach(*args: str, instance: Path) -> Done:
    """The command line in this process (click's runner: the same code as the
    `kbcoach` entry point, without paying its start-up once per call)."""
    import cli

    result = CliRunner().invoke(cli.cli, ["--instance", str(instance), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Done(result.exit_code, result.stdout, result.stderr)


def sync(*args: str, instance: Path) -> tuple[int, dict]:
    proc = kbcoach(*args, "--json", instance=instance)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def actions(report: dict) -> dict[str, str]:
    return {item["id"] or item["path"]: item["action"] for item in report["items"]}


# -- round trip ----------------------------------------------------------------------


def test_round_trip_is_identical(tmp_path, src):
    one, two = tmp_path / "one", tmp_path / "two"
    code, report = sync("import", str(src), instance=one)
    assert code == 0 and (report["added"], report["failed"]) == (3, 0)
    assert (src / ".kbcoach-sync").read_text(encoding="utf-8").startswith("# kbcoach")
    # the folder it came from is in step: nothing to write, not a byte touched
    before = files(src)
    code, report = sync("export", str(src), "--all", instance=one)
    assert code == 0 and report["counts"] == {"unchanged": 3}
    assert files(src) == before
    # out to a new folder, into a second database, out again: the same files
    out, again = tmp_path / "out", tmp_path / "again"
    assert sync("export", str(out), "--all", instance=one)[0] == 0
    assert sorted(files(out)) == [
        "phrasing/kaichang-wenhou.md",
        "product/caogao.md",
        "product/tuihuo-zhengce.md",
    ]
    assert sync("import", str(out), instance=two)[1]["added"] == 3
    assert sync("export", str(again), "--all", instance=two)[0] == 0
    assert files(again) == files(out)
    art, _ = stored(two, "product-tuihuo-zhengce")
    assert art.title == "七天无理由退货政策" and art.similar[0] == "买了不想要了能退吗"
    assert art.body.startswith("# 七天无理由退货")


def test_export_writes_published_only_unless_all(tmp_path, src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    out = tmp_path / "out"
    code, report = sync("export", str(out), instance=instance)
    assert code == 0 and report["counts"] == {"written": 2, "skipped": 1}
    assert not (out / "product" / "caogao.md").exists()
    # an article the folder holds is kept in step whatever its status
    editor_save(instance, "product-tuihuo-zhengce", status="archived")
    code, report = sync("export", str(out), instance=instance)
    assert actions(report)["product-tuihuo-zhengce"] == "updated"
    assert "status: archived" in (out / "product" / "tuihuo-zhengce.md").read_text("utf-8")
    help_text = kbcoach("export", "--help", instance=instance).stdout
    assert "默认只导出已发布的文章" in help_text and "--all" in help_text


# -- one side changed ----------------------------------------------------------------


def test_edit_on_disk_is_imported_through_the_editor_path(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    path = src / "product" / "退货政策.md"
    path.write_text(
        path.read_text("utf-8").replace(CHANGED_LINE, "签收之日起十五天内，商品完好即可申请退货。"),
        encoding="utf-8",
    )
    code, report = sync("import", str(src), "--by", "王培训", instance=instance)
    assert code == 0 and (report["changed"], report["unchanged"]) == (1, 2)
    assert actions(report) == {"product-tuihuo-zhengce": "updated"}
    art, version = stored(instance, "product-tuihuo-zhengce")
    assert "十五天内" in art.body and version == 2
    kb = open_kb(instance)
    try:
        newest = kb.store.revisions("product-tuihuo-zhengce")[0]
        assert (newest["version"], newest["by"], newest["changed"]) == (2, "王培训", "body")
        from kb.accounts import Accounts

        logged = Accounts(kb.store).audit_entries(where={"actor": "王培训"})
        assert {e["action"] for e in logged} == {"article.update", "article.import"}
        # searchable at once: the index caught up after the import
        assert kb.search("十五天内", log=False).hits[0].id == "product-tuihuo-zhengce"
    finally:
        kb.close()
    assert sync("import", str(src), instance=instance)[1]["changed"] == 0


def test_edit_in_the_database_is_exported_not_imported_back(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    editor_save(
        instance, "phrasing-kaichang-wenhou", title="开场问候（标准）", tags=["问候", "开场"]
    )
    path = src / "phrasing" / "开场问候.md"
    before = path.read_bytes()
    code, report = sync("import", str(src), instance=instance)
    assert code == 0 and actions(report) == {"phrasing-kaichang-wenhou": "db_newer"}
    assert stored(instance, "phrasing-kaichang-wenhou")[0].title == "开场问候（标准）"
    assert path.read_bytes() == before
    code, report = sync("export", str(src), instance=instance)
    assert code == 0 and actions(report) == {"phrasing-kaichang-wenhou": "updated"}
    text = path.read_text("utf-8")  # written where the team keeps it, not under a new name
    assert "title: 开场问候（标准）" in text and "- 开场" in text
    assert not (src / "phrasing" / "kaichang-wenhou.md").exists()
    assert sync("import", str(src), instance=instance)[1]["counts"] == {"unchanged": 3}


# -- both sides changed ----------------------------------------------------------------


def test_a_change_on_both_sides_is_a_conflict_and_nothing_is_overwritten(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    editor_save(instance, "product-tuihuo-zhengce", body="签收之日起七天内可退，运费由商家承担。")
    path = src / "product" / "退货政策.md"
    path.write_text(path.read_text("utf-8").replace(CHANGED_LINE, TEN_DAYS), encoding="utf-8")
    on_disk = path.read_bytes()

    proc = run_cli("import", str(src), instance=instance)
    assert proc.returncode == 1
    assert "冲突  product/退货政策.md（product-tuihuo-zhengce）" in proc.stdout
    assert "文件改了正文；数据库改了正文" in proc.stdout and "trainer1" in proc.stdout
    assert "正文：" in proc.stdout and "{+" in proc.stdout  # the diff, database → file
    assert "冲突 1" in proc.stdout
    art, version = stored(instance, "product-tuihuo-zhengce")
    assert version == 2 and "运费由商家承担" in art.body

    code, report = sync("export", str(src), instance=instance)
    assert code == 1 and actions(report) == {"product-tuihuo-zhengce": "conflict"}
    assert path.read_bytes() == on_disk
    assert report["items"][0]["diff"][0] == "差异（数据库 → 文件）"

    # the same edit made on both sides is no conflict
    editor_save(
        instance,
        "product-tuihuo-zhengce",
        body=RETURNS.split("---\n", 2)[2].strip().replace(CHANGED_LINE, TEN_DAYS),
    )
    code, report = sync("import", str(src), instance=instance)
    assert code == 0 and report["counts"] == {"unchanged": 3}


def test_force_resolves_a_conflict_one_way(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    editor_save(instance, "phrasing-kaichang-wenhou", body="您好，欢迎光临！")
    path = src / "phrasing" / "开场问候.md"
    path.write_text(path.read_text("utf-8").replace("客服小王", "客服小李"), encoding="utf-8")
    assert sync("import", str(src), instance=instance)[0] == 1
    code, report = sync(
        "import", str(src), "--force", "phrasing-kaichang-wenhou", instance=instance
    )
    assert code == 0 and actions(report) == {"phrasing-kaichang-wenhou": "updated"}
    assert "客服小李" in stored(instance, "phrasing-kaichang-wenhou")[0].body
    assert sync("export", str(src), instance=instance)[1]["counts"] == {"unchanged": 3}


def test_a_folder_never_synced_with_this_database_conflicts_where_it_differs(
    tmp_path, src, instance
):
    assert sync("import", str(src), instance=instance)[0] == 0
    other = tmp_path / "copy"
    write(other, "product/a.md", RETURNS.replace("七天内", "三十天内"))
    write(other, "phrasing/b.md", GREETING)
    proc = kbcoach("import", str(other), instance=instance)
    assert proc.returncode == 1
    assert "此前没有同步记录" in proc.stdout and "无法判断哪边较新" in proc.stdout
    assert "三十天内" not in stored(instance, "product-tuihuo-zhengce")[0].body


# -- deleted files ---------------------------------------------------------------------


def test_a_deleted_file_is_reported_and_archived_only_on_request(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    (src / "phrasing" / "开场问候.md").unlink()
    code, report = sync("import", str(src), instance=instance)
    assert code == 0 and actions(report) == {"phrasing-kaichang-wenhou": "missing"}
    assert stored(instance, "phrasing-kaichang-wenhou")[0].status == "published"
    # export does not bring back a file the team deleted
    code, report = sync("export", str(src), instance=instance)
    assert actions(report) == {"phrasing-kaichang-wenhou": "missing"}
    assert not (src / "phrasing" / "开场问候.md").exists()
    code, report = sync("import", str(src), "--archive-missing", "--dry-run", instance=instance)
    assert actions(report) == {"phrasing-kaichang-wenhou": "archived"}
    assert stored(instance, "phrasing-kaichang-wenhou")[0].status == "published"
    code, report = sync("import", str(src), "--archive-missing", instance=instance)
    assert code == 0 and actions(report) == {"phrasing-kaichang-wenhou": "archived"}
    art, version = stored(instance, "phrasing-kaichang-wenhou")
    assert (art.status, version) == ("archived", 2)
    assert sync("import", str(src), instance=instance)[1]["counts"] == {"unchanged": 2}


def test_a_deleted_file_of_an_article_changed_in_the_database_is_a_conflict(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    (src / "phrasing" / "开场问候.md").unlink()
    editor_save(instance, "phrasing-kaichang-wenhou", body="您好！")
    code, report = sync("import", str(src), "--archive-missing", instance=instance)
    assert code == 1 and actions(report) == {"phrasing-kaichang-wenhou": "conflict"}
    assert stored(instance, "phrasing-kaichang-wenhou")[0].status == "published"


# -- bad files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        ("---\nid: product-x\ntitle: 坏的\ntags: [退货, 换货\n---\n正文", 4, "YAML 格式错误"),
        ("---\nid: product-x\ntitle: 坏的\n作者: 小王\n---\n正文", 4, "未知字段 作者"),
        ("---\nid: 退货政策\ntitle: 中文 id\n---\n正文", 2, "id「退货政策」无效"),
        ("---\nid: product-x\ntitle: 坏的\nreview_by: 明年\n---\n", 4, "复审日期"),
        ("id: product-x\ntitle: 没有头\n", 1, "缺少 YAML 头"),
    ],
)
def test_a_bad_file_is_named_with_its_line_and_the_rest_imports(src, instance, text, line, said):
    write(src, "product/坏文件.md", text)
    proc = kbcoach("import", str(src), instance=instance)
    assert proc.returncode == 1
    assert f"product/坏文件.md:{line}: " in proc.stderr and said in proc.stderr, proc.stderr
    assert "新增 3" in proc.stdout and "失败 1" in proc.stdout
    assert stored(instance, "product-tuihuo-zhengce") is not None


def test_export_never_overwrites_a_file_it_cannot_read(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    path = src / "phrasing" / "开场问候.md"
    path.write_text(path.read_text("utf-8").replace("tags: [问候]", "tags: [问候"), "utf-8")
    broken = path.read_bytes()
    editor_save(instance, "phrasing-kaichang-wenhou", body="您好！")
    code, report = sync("export", str(src), instance=instance)
    assert code == 1 and report["failed"] == 1 and "phrasing/开场问候.md:" in report["errors"][0]
    assert path.read_bytes() == broken
    # and import does not take the broken file for a deleted one
    code, report = sync("import", str(src), "--archive-missing", instance=instance)
    assert "phrasing-kaichang-wenhou" not in actions(report)
    assert stored(instance, "phrasing-kaichang-wenhou")[0].status == "published"


# -- dry run ---------------------------------------------------------------------------


def test_dry_run_writes_nothing(tmp_path, src, instance):
    proc = kbcoach("import", str(src), "--dry-run", instance=instance)
    assert proc.returncode == 0 and "演练" in proc.stdout and "新增 3" in proc.stdout
    assert stored(instance, "product-tuihuo-zhengce") is None
    assert not (src / ".kbcoach-sync").exists()
    assert sync("import", str(src), instance=instance)[0] == 0
    path = src / "product" / "退货政策.md"
    path.write_text(path.read_text("utf-8").replace(CHANGED_LINE, TEN_DAYS), encoding="utf-8")
    code, report = sync("import", str(src), "--dry-run", instance=instance)
    assert report["dry_run"] and actions(report) == {"product-tuihuo-zhengce": "updated"}
    assert stored(instance, "product-tuihuo-zhengce")[1] == 1
    out = tmp_path / "out"
    code, report = sync("export", str(out), "--dry-run", instance=instance)
    assert code == 0 and report["counts"]["written"] == 2
    assert not out.exists()


# -- the library, on both backends -------------------------------------------------------


@BOTH
def test_sync_state_on_both_backends(tmp_path, src, instance, database_url):
    from kb.authoring import save_article
    from kb.sync import export_folder, import_folder

    kb = open_kb(instance, database_url)
    try:
        assert import_folder(kb, src, by="cli").count("created") == 3
        save_article(
            kb, "product-caogao", {"body": "以旧换新：旧机折价抵扣。"}, "trainer1", base_version=1
        )
        path = src / "product" / "退货政策.md"
        path.write_text(path.read_text("utf-8").replace(CHANGED_LINE, TEN_DAYS), encoding="utf-8")
        report = import_folder(kb, src, by="cli")
        assert {i.article_id: i.action for i in report.items if i.action != "unchanged"} == {
            "product-tuihuo-zhengce": "updated",
            "product-caogao": "db_newer",
        }
        report = export_folder(kb, src)
        assert [(i.article_id, i.action) for i in report.items if i.action != "unchanged"] == [
            ("product-caogao", "updated")
        ]
        assert "旧机折价" in (src / "product" / "caogao.md").read_text("utf-8")
        again = import_folder(kb, src)
        assert again.count("unchanged") == 3 and again.ok
    finally:
        kb.close()


# -- what counts as a change -------------------------------------------------------------


def test_an_article_and_the_file_written_from_it_hash_alike():
    from kb.articles import dump_article, load_dir, parse_article
    from kb.models import Article
    from kb.sync import content_hash

    starter, errors = load_dir(Path(__file__).resolve().parents[1] / "articles")
    assert starter and not errors
    odd = Article(
        id="product-odd",
        title="  标题两边有空格 ",
        category="product",
        body="\n\n  第一行缩进\r\n第二行行尾有空格   \r\n\n\n",
        tags=["退货", " ", " 换货 "],
        similar=["123", "yes", "2027-06-30"],
        review_by="2027-06-30",
    )
    for article in [*starter, odd]:
        back = parse_article(dump_article(article))
        assert content_hash(back) == content_hash(article), article.id
    assert content_hash(odd) != content_hash(Article(**{**odd.to_dict(), "body": "第一行缩进"}))


def test_force_with_an_unknown_id_is_an_error(src, instance):
    code, report = sync("import", str(src), "--force", "no-such-article", instance=instance)
    assert code == 1 and "--force no-such-article：目录中没有这篇文章" in report["errors"]
    assert report["added"] == 3


def test_init_again_keeps_an_article_edited_on_the_web(src, instance):
    assert kbcoach("init", "--articles", str(src), instance=instance).returncode == 0
    editor_save(instance, "product-tuihuo-zhengce", title="退货政策（网页上改过）")
    again = kbcoach("init", "--articles", str(src), instance=instance)
    assert again.returncode == 0 and "数据库较新" in again.stdout
    assert stored(instance, "product-tuihuo-zhengce")[0].title == "退货政策（网页上改过）"


def test_a_marker_left_in_a_merge_conflict_is_named_with_its_line(src, instance):
    assert sync("import", str(src), instance=instance)[0] == 0
    marker = src / ".kbcoach-sync"
    header, ours = marker.read_text("utf-8").splitlines()
    theirs = "folder: " + "0" * 32
    marker.write_text(
        f"{header}\n<<<<<<< HEAD\n{ours}\n=======\n{theirs}\n>>>>>>> main\n", encoding="utf-8"
    )
    path = src / "product" / "退货政策.md"
    path.write_text(path.read_text("utf-8").replace(CHANGED_LINE, TEN_DAYS), encoding="utf-8")
    proc = kbcoach("import", str(src), instance=instance)
    assert proc.returncode == 1
    assert "错误：.kbcoach-sync:2: 同步标识文件格式错误" in proc.stderr, proc.stderr
    assert "git 合并冲突" in proc.stderr
    assert stored(instance, "product-tuihuo-zhengce")[1] == 1  # nothing imported


PROMISE = """\
---
id: phrasing-fahuo-chengnuo
title: 发货承诺
category: phrasing
status: published
---

> 亲，我保证今天一定发货，百分百没问题。
"""


def test_import_keeps_the_phrasing_lint_of_the_editor(src, instance):
    # a published phrasing article with an error-level wording is not written without
    # an override, as in the editor; with one, the reason is audit-logged
    (src / "phrasing").mkdir(exist_ok=True)
    (src / "phrasing" / "发货承诺.md").write_text(PROMISE, encoding="utf-8")
    code, report = sync("import", str(src), instance=instance)
    assert code == 1 and actions(report)["phrasing-fahuo-chengnuo"] == "error"
    said = next(i for i in report["items"] if i["id"] == "phrasing-fahuo-chengnuo")
    assert "标准话术中有错误级问题" in json.dumps(said, ensure_ascii=False)
    assert stored(instance, "phrasing-fahuo-chengnuo") is None
    empty = kbcoach("import", str(src), "--lint-override", " ", instance=instance)
    assert empty.returncode == 1 and "请填写理由" in empty.stderr
    code, report = sync("import", str(src), "--lint-override", "培训用反面示例", instance=instance)
    assert code == 0 and actions(report)["phrasing-fahuo-chengnuo"] == "created"
    kb = open_kb(instance)
    try:
        from kb.accounts import Accounts

        [entry] = Accounts(kb.store).audit_entries(where={"action": "article.lint_override"})
        assert "培训用反面示例" in json.dumps(entry, ensure_ascii=False)
    finally:
        kb.close()
