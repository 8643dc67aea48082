"""The trainers' list of articles (文章管理): filters, search box, counts per status.

Filters come in as text (a query string) and are checked here, so the page and any
other surface share one meaning: status, category, owner, 我的草稿 (`mine`: the
articles the user owns or last saved), 待我审核 (`not_by`: with the 待审核 status, those
another user saved last, which this user may approve), review due (overdue / within SOON_DAYS / none
set), updated since a date, and a search over id and title.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from .errors import ValidationError
from .models import CATEGORIES, CATEGORY_LABELS, STATUS_LABELS, STATUSES

SOON_DAYS = 30
Q_MAX = 100
PER_PAGE_MAX = 200
ORDERS = {"updated": "最近更新", "review": "复审日期", "title": "标题", "id": "文章 ID"}
REVIEW_FILTERS = {"overdue": "已过复审日期", "soon": f"{SOON_DAYS} 天内到期", "none": "未设置"}


@dataclass
class ArticleFilter:
    status: str = ""
    category: str = ""
    owner: str = ""
    mine: str = ""  # a username
    not_by: str = ""  # a username: 待我审核, articles this user did not save last
    review: str = ""
    updated_since: str = ""  # YYYY-MM-DD
    q: str = ""
    order: str = "updated"

    def check(self) -> ArticleFilter:
        """Raise ValidationError (in Chinese, naming the filter) for a value it cannot mean."""
        if self.status and self.status not in STATUSES:
            raise ValidationError(
                f"状态筛选无效，应为 {' / '.join(STATUS_LABELS.values())} 之一", field="status"
            )
        if self.category and self.category not in CATEGORIES:
            raise ValidationError(
                f"分类筛选无效，应为 {' / '.join(CATEGORY_LABELS.values())} 之一", field="category"
            )
        if self.review and self.review not in REVIEW_FILTERS:
            raise ValidationError(
                f"复审筛选无效，应为 {' / '.join(REVIEW_FILTERS.values())} 之一", field="review"
            )
        if self.order not in ORDERS:
            raise ValidationError(
                f"排序无效，应为 {' / '.join(ORDERS.values())} 之一", field="order"
            )
        if self.updated_since:
            try:
                dt.date.fromisoformat(self.updated_since)
            except ValueError:
                raise ValidationError(
                    "「更新于此日期之后」应为 YYYY-MM-DD 格式的日期", field="updated_since"
                ) from None
        if len(self.q) > Q_MAX or len(self.owner) > 200 or len(self.not_by) > 200:
            raise ValidationError(f"搜索内容过长（最多 {Q_MAX} 个字符）", field="q")
        return self


@dataclass
class ArticleList:
    rows: list[dict]
    total: int
    counts: dict[str, int]  # per status, under every filter but the status one
    owners: list[str] = field(default_factory=list)

    @property
    def all_statuses(self) -> int:
        return sum(self.counts.values())


def list_articles(
    store, flt: ArticleFilter, *, page: int = 1, per_page: int = 50, today: dt.date | None = None
) -> ArticleList:
    """One page of the articles that pass `flt`, with the total and counts per status."""
    flt.check()
    per_page = max(1, min(per_page, PER_PAGE_MAX))
    today = today or dt.datetime.now(dt.UTC).date()
    params = asdict(flt)
    params["today"] = today.isoformat()
    params["soon"] = (today + dt.timedelta(days=SOON_DAYS)).isoformat()
    rows, total, counts = store.articles.listing(
        params, flt.order, per_page, (max(page, 1) - 1) * per_page
    )
    for row in rows:
        row["status_label"] = STATUS_LABELS.get(row["status"], row["status"])
        row["category_label"] = CATEGORY_LABELS.get(row["category"], row["category"])
        due = row["review_by"] or ""
        row["review_state"] = (
            "" if not due else "overdue" if due < params["today"] else
            "soon" if due <= params["soon"] else "ok"
        )  # fmt: skip
    return ArticleList(rows, total, counts, store.articles.owners())
