"""The rules page's form and playground (web/supervise.py `rules` dispatches here):
translate the posted fields for coach/ruleform.py and coach/playground.py and keep
what was typed when the page is shown again."""

from __future__ import annotations

from flask import current_app, request

from coach.checker import Checker
from coach.limits import CHECK_SECONDS
from coach.playground import PlaygroundError, compare, parse_pasted
from coach.ruleform import parse_form, rows, write_overlay
from coach.rules import RuleError

from .coach import checker_for

PLAY_BUDGET_SECONDS = 10.0  # a whole playground request (each conversation has its own limit)


def default_pack():
    return checker_for(0).pack


def pack_of(version: int):
    """The pack of a saved version, or the default pack when it no longer loads."""
    try:
        return checker_for(version).pack
    except RuleError:
        return default_pack()


def form_rows(book, version: int) -> list[dict]:
    """The form's rows for a saved version, as the page shows them before any edit."""
    return rows(book.text_of(version), pack_of(version), default_pack())


def posted_rows(base_rows: list[dict]) -> list[dict]:
    """The rows with what was posted for them (raw, so a wrong value is shown as typed
    beside its message)."""
    form = request.form
    sent = set(form.getlist("rule"))
    out = []
    for row in base_rows:
        rid = row["id"]
        if rid in sent:
            row = {
                **row,
                "enabled": form.get(f"{rid}.on") == "1",
                "level": form.get(f"{rid}.level", row["level"]),
                "weight": form.get(f"{rid}.weight", row["weight"]),
                "cap": form.get(f"{rid}.cap", "") or None,
                "add": (form.get(f"{rid}.add") or "").splitlines(),
                "remove": (form.get(f"{rid}.remove") or "").splitlines(),
                "was": form.get(f"{rid}.was", row["was"]),
            }
        out.append(row)
    return out


def overlay_from_form(book, base: int) -> tuple[str | None, dict[str, str]]:
    """The overlay YAML of the base version with the posted form applied, or None and
    the field errors (keyed `<rule id>.<field>`)."""
    values, errors = parse_form(request.form, pack_of(base), default_pack())
    if errors:
        return None, errors
    return write_overlay(book.text_of(base), values, default_pack()), {}


def problems_by_rule(problems: list[str], row_list: list[dict]) -> dict[str, str]:
    """Load problems that name a rule, keyed `<id>.rule` so each shows on its row."""
    out: dict[str, str] = {}
    for row in row_list:
        rid = row["id"]
        mine = [p for p in problems if f"规则 {rid}:" in p or f"规则 {rid} " in p]
        if mine:
            out[f"{rid}.rule"] = "；".join(p.split(": ", 1)[-1] for p in mine[:3])
    return out


def _team_load() -> dict:
    """Loader options with the team's agent names and aliases (客服名单), as an upload
    gets them."""
    from coach.options import ImportOptions
    from core.team_agents import TeamAgents

    from . import get_kb
    from .auth import accounts

    return TeamAgents(get_kb().store, accounts()).apply(ImportOptions()).loader()


def playground(book, draft_text: str) -> dict:
    """Run the draft overlay and the saved pack on the posted conversation: the page's
    `play` context (results, notes, or the error in Chinese)."""
    pasted = request.form.get("conversation") or ""
    play: dict = {"error": None, "problems": [], "results": [], "notes": []}
    try:
        convs, play["notes"] = parse_pasted(pasted, _team_load())
    except PlaygroundError as exc:
        play["error"] = str(exc)
        play["status"] = exc.status
        return play
    try:
        draft_pack = book.validate(draft_text)
    except RuleError as exc:
        play["problems"] = exc.problems
        play["status"] = 400
        return play
    seconds = current_app.config.get("COACH_CHECK_SECONDS", CHECK_SECONDS)
    try:
        saved = checker_for(book.version())
    except RuleError:  # a saved version that no longer loads: the default pack
        saved = checker_for(0)
    draft = Checker(draft_pack, seconds=seconds)
    play["results"], left = compare(saved, draft, convs, budget=PLAY_BUDGET_SECONDS)
    if left:
        play["notes"].append(
            f"已超过试运行时限（{PLAY_BUDGET_SECONDS:g} 秒），其余 {left} 个会话未试运行"
        )
    play["status"] = 200
    return play
