"""Domain records of the knowledge base."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CATEGORIES = ("product", "industry", "phrasing", "norm")
CATEGORY_LABELS = {
    "product": "产品",
    "industry": "行业",
    "phrasing": "标准话术",
    "norm": "服务规范",
}
STATUSES = ("draft", "review", "published", "archived")
ROLES = ("agent", "trainer", "supervisor", "admin")
ROLE_LABELS = {
    "agent": "客服专员",
    "trainer": "培训师",
    "supervisor": "质检主管",
    "admin": "管理员",
}
STATUS_LABELS = {"draft": "草稿", "review": "待审核", "published": "已发布", "archived": "已归档"}


@dataclass
class Article:
    """A knowledge-base article: front matter fields plus a Markdown body."""

    id: str
    title: str
    category: str
    body: str = ""
    tags: list[str] = field(default_factory=list)
    similar: list[str] = field(default_factory=list)
    owner: str = ""
    review_by: str = ""
    status: str = "published"
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def content_key(self) -> tuple:
        """What counts as a change: every field except where it was read from."""
        return (
            self.title,
            self.category,
            self.body,
            tuple(self.tags),
            tuple(self.similar),
            self.owner,
            self.review_by,
            self.status,
        )
