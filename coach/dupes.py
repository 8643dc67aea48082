"""Duplicate conversations: what makes an uploaded conversation one already audited.

Two conversations are the same when they have the same content (the fingerprint: a
sha256 over every turn's role and text, NFKC- and whitespace-normalised, so a
re-export with other times, speaker names or full-width letters still matches) or the
same conversation id, when the id came from the source: ids the importers make up
for records without one (``line-3``, ``chat.txt#2``, ``csv``, ``conversation``) say
nothing about the conversation and never match.  The migration 0006_audit_dupes keeps a
frozen copy of `fingerprint` to fill the column of conversations stored before.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from .transcripts import Conversation, Turn

REASONS = {
    "id": "会话ID相同",
    "content": "内容相同",
    "upload": "本次上传中重复",
}
_MADE_UP = re.compile(r"line-\d+|csv|conversation")


def fingerprint(turns: Iterable[Turn | dict]) -> str:
    """The content fingerprint of a conversation's turns (hex sha256)."""
    digest = hashlib.sha256()
    for t in turns:
        role, text = (t.get("role"), t.get("text")) if isinstance(t, dict) else (t.role, t.text)
        text = " ".join(unicodedata.normalize("NFKC", str(text or "")).split())
        digest.update(f"{role or ''}\x1f{text}\x1e".encode())
    return digest.hexdigest()


def given_id(conv: Conversation) -> str | None:
    """The conversation's id if its source gave it one, None if an importer made it up."""
    cid = conv.id or ""
    if not cid or _MADE_UP.fullmatch(cid):
        return None
    head, sep, tail = cid.rpartition("#")
    if sep and tail.isdigit() and head and conv.source.startswith(head):
        return None  # "<file>#<n>": the n-th conversation of a file without ids
    return cid
