"""The search answer, assembled once: ranked hits (pinned answers first), each script
hit's text and shortcut, the script a shortcut query names, and 您是不是要找 for a
query that found nothing.  The API, the search page and the CLI only render it."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field

from kb.search import Hit
from kb.suggest import suggester
from scripts_lib.library import Library
from scripts_lib.usage import PersonalScripts, script_id_of

SHORTCUT_MAX = 10  # characters of a shortcut code such as /dd


@dataclass
class Answer:
    query: str
    total: int
    took_ms: float
    hits: list[dict] = field(default_factory=list)
    shortcut: dict | None = None  # the query was exactly this script's shortcut code
    did_you_mean: str | None = None

    def to_dict(self) -> dict:
        body = {"took_ms": round(self.took_ms, 2), "total": self.total, "hits": self.hits}
        if self.shortcut is not None:
            body["shortcut"] = self.shortcut
        if self.did_you_mean:
            body["did_you_mean"] = self.did_you_mean
        return body


def script_fields(script) -> dict:
    """A script as a hit shows it (shared or personal)."""
    data = script.to_dict()
    return {
        **data,
        "title_html": html.escape(data["title"]),
        "category": "phrasing",
        "snippet": html.escape(data["text"]),
        "score": 0.0,
        "pinned": False,
        "doctype": "script",
    }


class SearchService:
    """One instance's search: the knowledge base's index plus the scripts library."""

    def __init__(self, kb, library: Library):
        self.kb = kb
        self.library = library

    def hit(self, h: Hit) -> dict:
        out = {
            "id": h.id,
            "title": h.title,
            "title_html": h.title_html,
            "category": h.category,
            "tags": h.tags,
            "snippet": h.snippet,
            "score": h.score,
            "pinned": h.pinned,
            "doctype": h.doctype,
        }
        if h.doctype == "script":
            script_id = script_id_of(h.id)
            out.update(id=script_id, shortcut="", text="", scenario="")
            if script_id in self.library:  # else indexed before the library lost it
                script = self.library.get(script_id)
                out.update(shortcut=script.shortcut, text=script.text, scenario=script.scenario)
        return out

    def _mark_verified(self, hits: list[dict]) -> None:
        """Each article hit's 已核实 / 待复核 mark (`verified`: None for scripts, and
        for an article with no mark), from one query for all of them."""
        from kb.review import verifications

        ids = [h["id"] for h in hits if h["doctype"] != "script"]
        marks = verifications(self.kb.store, ids) if ids else {}
        for h in hits:
            h["verified"] = marks.get(h["id"]) if h["doctype"] != "script" else None

    def shortcut(self, q: str, user_id: int | None) -> dict | None:
        """The script whose shortcut is exactly the query: the user's own, then shared."""
        q = q.strip()
        if not q.startswith(("/", "／")) or len(q) > SHORTCUT_MAX or " " in q:
            return None
        if user_id is not None:
            mine = PersonalScripts(self.kb.store, self.library).by_shortcut(user_id, q)
            if mine is not None:
                return {**script_fields(mine), "scenario_title": "我的话术"}
        script = self.library.by_shortcut(q)
        if script is None:
            return None
        titles = {sc.name: sc.title for sc in self.library.scenarios()}
        return {**script_fields(script), "scenario_title": titles.get(script.scenario, "")}

    def did_you_mean(self, q: str, *, now: bool = False) -> str | None:
        """The closest title or similar question; `now` builds the lists first (the
        CLI), else a process that has not built them yet answers None meanwhile."""
        sug = suggester(self.kb)
        if now:
            sug.refresh()
        return sug.did_you_mean(q) if q and (now or sug.ready()) else None

    def answer(
        self,
        q: str,
        *,
        user_id: int | None = None,
        category: str | None = None,
        tag: str | None = None,
        limit: int = 10,
        via: str = "api",
        suggest_now: bool = False,
    ) -> Answer:
        result = self.kb.search(q, via=via, category=category, tag=tag, limit=limit)
        hits = [self.hit(h) for h in result.hits]
        total = result.total
        found = self.shortcut(q, user_id)
        if found is not None:
            rest = [h for h in hits if not (h["doctype"] == "script" and h["id"] == found["id"])]
            total += len(rest) == len(hits)
            hits = [found, *rest][:limit]
        self._mark_verified(hits)
        answer = Answer(q, total, result.took_ms, hits, found)
        if not total:
            answer.did_you_mean = self.did_you_mean(q, now=suggest_now)
        return answer


__all__ = ["Answer", "SearchService", "asdict"]
