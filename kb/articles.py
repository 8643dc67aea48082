"""Markdown articles with YAML front matter: parse, validate, write back."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from . import safeyaml
from .errors import ValidationError
from .models import CATEGORIES, STATUSES, Article

MAX_ARTICLE_BYTES = 1_000_000
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
FIELDS = ("id", "title", "category", "tags", "similar", "owner", "review_by", "status")
REQUIRED = ("id", "title", "category")


def _key_lines(node: yaml.Node | None, offset: int) -> dict[str, int]:
    """1-based file line of each top-level key of a composed YAML mapping."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        k.value: k.start_mark.line + 1 + offset
        for k, _ in node.value
        if isinstance(k, yaml.ScalarNode)
    }


def _str_list(value, field: str, path: str, line: int | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[,，、]", value)]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ValidationError(f"字段 {field} 应为字符串列表", path=path, line=line)
    return [str(v).strip() for v in value if str(v).strip()]


def parse_article(text: str, *, path: str = "", default_category: str = "") -> Article:
    """Parse one Markdown file's text; errors name the file and the line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_ARTICLE_BYTES:
        raise ValidationError(f"文件超过 {MAX_ARTICLE_BYTES // 1000} KB 上限", path=path)
    if "\x00" in text:
        raise ValidationError("文件包含 NUL 字符，不是文本文件", path=path)
    text = text.lstrip("\ufeff")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ValidationError("缺少 YAML 头（第一行应为 ---）", path=path, line=1)
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ValidationError("YAML 头没有结束的 --- 行", path=path, line=1) from None
    header = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :]).strip("\n")
    try:
        # no anchors/aliases, bounded depth and size; the pure-Python parser places
        # syntax errors where authors look for them
        node = safeyaml.compose(header, loader=yaml.SafeLoader)
        meta = safeyaml.load(header, loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(f"YAML 格式错误：{problem}", path=path, line=line) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ValidationError("YAML 头应为键值对", path=path, line=2)
    key_line = _key_lines(node, 1)

    def line_of(key: str) -> int:
        return key_line.get(key, 1)

    for key in REQUIRED:
        if key == "category" and default_category and not meta.get(key):
            meta[key] = default_category
        value = meta.get(key)
        if value is None or not str(value).strip():
            raise ValidationError(
                f"缺少必填字段 {key}", path=path, line=line_of(key) if key in meta else 1
            )
    unknown = sorted(set(map(str, meta)) - set(FIELDS))
    if unknown:
        raise ValidationError(f"未知字段 {unknown[0]}", path=path, line=line_of(unknown[0]))
    review_by = meta.get("review_by") or ""
    if isinstance(review_by, dt.date):
        review_by = review_by.isoformat()
    article = Article(
        id=str(meta["id"]).strip(),
        title=str(meta["title"]).strip(),
        category=str(meta["category"]).strip(),
        body=body,
        tags=_str_list(meta.get("tags"), "tags", path, line_of("tags")),
        similar=_str_list(meta.get("similar"), "similar", path, line_of("similar")),
        owner=str(meta.get("owner") or "").strip(),
        review_by=str(review_by).strip(),
        status=str(meta.get("status") or "published").strip(),
        source=path,
    )
    validate(article, path=path, line_of=line_of)
    return article


def validate(article: Article, *, path: str = "", line_of=lambda key: None) -> None:
    """Field-level checks shared by every way an article comes in."""
    if not ID_RE.match(article.id):
        raise ValidationError(
            f"id「{article.id}」无效：只能用字母、数字、-、_ 和 .，最长 128 个字符",
            path=path,
            line=line_of("id"),
            field="id",
        )
    if not article.title or len(article.title) > 200:
        raise ValidationError(
            "标题不能为空且不超过 200 字", path=path, line=line_of("title"), field="title"
        )
    if article.category not in CATEGORIES:
        raise ValidationError(
            f"分类「{article.category}」无效，应为 {' / '.join(CATEGORIES)} 之一",
            path=path,
            line=line_of("category"),
            field="category",
        )
    if article.status not in STATUSES:
        raise ValidationError(
            f"状态「{article.status}」无效，应为 {' / '.join(STATUSES)} 之一",
            path=path,
            line=line_of("status"),
            field="status",
        )
    if article.review_by:
        try:
            dt.date.fromisoformat(article.review_by)
        except ValueError:
            raise ValidationError(
                f"复审日期（review_by）「{article.review_by}」应为 YYYY-MM-DD 格式的日期",
                path=path,
                line=line_of("review_by"),
                field="review_by",
            ) from None


def read_article(path: Path, *, root: Path | None = None) -> Article:
    """Read and parse one file; the folder name is the default category."""
    shown = str(path.relative_to(root)) if root else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"无法读取：{exc.strerror}", path=shown) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValidationError("不是 UTF-8 编码的文本", path=shown, line=line) from None
    default_category = path.parent.name if path.parent.name in CATEGORIES else ""
    return parse_article(text.replace("\r\n", "\n"), path=shown, default_category=default_category)


def iter_article_files(root: Path) -> Iterator[Path]:
    """Markdown files under root, in a stable order."""
    if root.is_file():
        yield root
        return
    yield from sorted(
        p for p in root.rglob("*.md") if p.is_file() and p.name.lower() != "readme.md"
    )


def load_dir(root: Path) -> tuple[list[Article], list[ValidationError]]:
    """Parse every article under root; a broken file is reported, never fatal."""
    articles: list[Article] = []
    errors: list[ValidationError] = []
    seen: dict[str, str] = {}
    base = root if root.is_dir() else root.parent
    for path in iter_article_files(root):
        try:
            art = read_article(path, root=base)
        except ValidationError as exc:
            errors.append(exc)
            continue
        if art.id in seen:
            errors.append(
                ValidationError(f"id「{art.id}」与 {seen[art.id]} 重复", path=art.source, line=2)
            )
            continue
        seen[art.id] = art.source
        articles.append(art)
    return articles, errors


def dump_article(article: Article) -> str:
    """The Markdown file text of an article (front matter + body)."""
    meta = {
        "id": article.id,
        "title": article.title,
        "category": article.category,
        "tags": list(article.tags),
        "similar": list(article.similar),
        "owner": article.owner,
        "review_by": article.review_by,
        "status": article.status,
    }
    header = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{header}---\n{article.body.rstrip()}\n"


def article_filename(article: Article) -> str:
    """Relative path `<category>/<slug>.md` for export."""
    prefix = f"{article.category}-"
    slug = article.id[len(prefix) :] if article.id.startswith(prefix) else article.id
    return f"{article.category}/{slug}.md"
