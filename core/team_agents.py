"""The team's agents (issue 15): the sender names agents have in exported chats, each
optionally the alias of a user account.

Every upload (page and API) and `kbcoach audit run` add them to the names typed for
that upload (`ImportOptions.with_team`): a sender named here is an agent, and an alias
links the transcript to its account, so the agent sees it under 我的质检 and may appeal,
exactly as when the sender name equals the username.  Supervisors and admins edit the
list at /settings/agents; every change is written to the audit log.
"""

from __future__ import annotations

from coach.agents import MAX_NAME_CHARS
from coach.options import ImportOptions
from kb.errors import KbError, NotFound
from kb.store import now_iso
from storage import team_agents as repo

MAX_TEAM_AGENTS = 500
_SEPARATORS = ",，、;；\n\r"  # the upload's 客服 field splits names on these


class TeamAgentError(KbError):
    """A refused entry; `field` names the form field the message belongs to."""

    status = 400

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


class TeamAgents:
    """The team's agent names and aliases in the instance database."""

    def __init__(self, store, accounts=None):
        self.database = store.database
        self.accounts = accounts

    def list(self, limit: int | None = None, offset: int = 0) -> list[dict]:
        return repo.listed(self.database, limit, offset)

    def count(self) -> int:
        return repo.count(self.database)

    def add(self, name: str, username: str = "", *, actor: str) -> dict:
        """Add a sender name (optionally the alias of `username`); TeamAgentError
        (Chinese, with the field) when refused."""
        name = (name or "").strip()
        username = (username or "").strip()
        if not name:
            raise TeamAgentError("请填写客服在会话记录中的发送人名称")
        if len(name) > MAX_NAME_CHARS:
            raise TeamAgentError(f"发送人名称最多 {MAX_NAME_CHARS} 个字符")
        if any(c in name for c in _SEPARATORS):
            raise TeamAgentError("发送人名称不能含逗号、顿号、分号或换行（每次添加一个名称）")
        if username:
            if self.accounts is None:
                raise TeamAgentError("无法核对账号", "username")
            try:
                user = self.accounts.by_name(username)
            except NotFound:
                raise TeamAgentError(f"账号「{username[:40]}」不存在", "username") from None
            username = user.username
            if not user.has("agent"):
                raise TeamAgentError(
                    f"账号「{username}」没有客服角色：别名只能指向客服账号", "username"
                )
            try:  # another account's login name: its chats would be counted as this one's
                other = self.accounts.by_name(name)
            except NotFound:
                other = None
            if other is not None and other.username != username:
                raise TeamAgentError(
                    f"「{name}」是账号 {other.username} 的登录名，不能作为账号 {username} 的别名"
                )
        if self.count() >= MAX_TEAM_AGENTS:
            raise TeamAgentError(f"客服名称最多 {MAX_TEAM_AGENTS} 个，请先删除不用的名称")
        row = {
            "name": name,
            "username": username or None,
            "created_by": actor,
            "created_at": now_iso(),
        }
        new_id = repo.add(self.database, row)
        if new_id is None:
            raise TeamAgentError(f"发送人名称「{name}」已在列表中")
        if self.accounts is not None:
            self.accounts.audit(actor, "team_agent.add", name, {"username": username or None})
        return {"id": new_id, **row}

    def remove(self, agent_id: int, *, actor: str) -> dict:
        row = repo.remove(self.database, agent_id)
        if row is None:
            raise NotFound("该客服名称不存在")
        if self.accounts is not None:
            self.accounts.audit(actor, "team_agent.remove", row["name"], {})
        return row

    def names_and_aliases(self) -> tuple[list[str], dict[str, str]]:
        """(names without an account, sender name -> username)."""
        names, aliases = [], {}
        for row in self.list():
            if row["username"]:
                aliases[row["name"]] = row["username"]
            else:
                names.append(row["name"])
        return names, aliases

    def apply(self, options: ImportOptions) -> ImportOptions:
        """`options` plus the team's names and aliases."""
        names, aliases = self.names_and_aliases()
        if not names and not aliases:
            return options
        return options.with_team(names, aliases)
