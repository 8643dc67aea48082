"""An upload of transcript files, as the web form sends it: its fields turned into
loader options, and its files read into conversations.

The web answers an upload at once: it checks the fields here (`load_options`, errors
by field), stores the files and the fields, and the background worker reads them
(`read_files`, called by coach/audits.py `read_upload`) with the same options.  Every
field of the form reaches `load_options`, which is the one place that turns fields
into options for coach/transcripts.py `load_bytes`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from .transcripts import ImportIssue, load_bytes

EMPTY_FILE = "文件中没有会话（为空或只有空行）"
MAX_FIELD_CHARS = 64 * 1024  # of one stored form field
# fields of the form that are not loader options (kept out of the stored options)
NOT_OPTIONS = frozenset({"csrf_token", "name", "reaudit", "mapping_b64", "mapping_name", "team"})


def form_fields(form: Mapping) -> dict[str, str]:
    """The form's fields that may be loader options, as stored with an upload (the
    first value of each, clipped)."""
    return {
        k: str(form.get(k) or "")[:MAX_FIELD_CHARS]
        for k in form
        if k not in NOT_OPTIONS and isinstance(k, str)
    }


def stored_fields(
    fields: dict[str, str],
    mapping: bytes | None,
    mapping_name: str,
    team_names: list[str],
    team_aliases: dict[str, str],
) -> dict[str, str]:
    """The fields stored with an upload: the form's, the mapping file (base64: it is
    read again as the same bytes) and the team's agent names and aliases as they were
    when the upload came in."""
    out = dict(fields)
    if mapping is not None:
        out["mapping_b64"] = base64.b64encode(mapping).decode("ascii")
        out["mapping_name"] = mapping_name
    if team_names or team_aliases:
        out["team"] = json.dumps([team_names, team_aliases], ensure_ascii=False)
    return out


def load_options(fields: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """Loader options from an upload's stored fields (`stored_fields`), and the errors
    (Chinese, by field).  Fields it does not know are ignored."""
    from .options import read_options

    mapping = None
    if fields.get("mapping_b64"):
        mapping = base64.b64decode(fields["mapping_b64"])
    options, errors = read_options(
        fields.get("agents") or "",
        fields.get("agent_pattern") or "",
        fields.get("format") or "",
        mapping,
        fields.get("mapping_name") or "映射文件",
    )
    if fields.get("team"):
        names, aliases = json.loads(fields["team"])
        options = options.with_team(names, aliases)
    return options.loader(), errors


def is_blank(data: bytes) -> bool:
    """A file of nothing but spaces, line ends and byte-order marks (seen before any
    parsing, so an upload of only such files is refused at once)."""
    return not data.replace(b"\xef\xbb\xbf", b"").replace(b"\x00", b"").strip(b" \t\r\n\xff\xfe")


def read_files(
    files: list[tuple[str, bytes]], fields: Mapping[str, str]
) -> tuple[list, list[ImportIssue]]:
    """The conversations and unreadable records (file, line, reason) of an upload's
    files; a file without any conversation is listed as unreadable."""
    options, errors = load_options(fields)
    if errors:  # checked when the upload came in; a stored upload is not re-asked
        raise ValueError("；".join(errors.values()))
    convs: list = []
    issues: list[ImportIssue] = []
    for name, data in files:
        c, e = load_bytes(data, name, **options)
        if not c and not e:
            e = [ImportIssue(name, 0, EMPTY_FILE)]
        convs.extend(c)
        issues.extend(e)
    return convs, issues
