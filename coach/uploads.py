"""An upload of transcript files, as the web form sends it: its fields turned into
loader options, and its files read into conversations.

The web answers an upload at once: it checks the fields here (`load_options`, errors
by field), stores the files and the fields, and the background worker reads them
(`read_files`, called by coach/audits.py `read_upload`) with the same options.  Every
field of the form reaches `load_options`, which is the one place that turns fields
into options for coach/transcripts.py `load_bytes`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .transcripts import ImportIssue, load_bytes

EMPTY_FILE = "文件中没有会话（为空或只有空行）"
MAX_FIELD_CHARS = 64 * 1024  # of one stored form field
# fields of the form that are not loader options (kept out of the stored options)
NOT_OPTIONS = frozenset({"csrf_token", "name", "reaudit"})


def form_fields(form: Mapping) -> dict[str, str]:
    """The form's fields that may be loader options, as stored with an upload (the
    first value of each, clipped)."""
    return {
        k: str(form.get(k) or "")[:MAX_FIELD_CHARS]
        for k in form
        if k not in NOT_OPTIONS and isinstance(k, str)
    }


def load_options(fields: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """Loader options from the upload form's fields, and the errors (Chinese, by
    field, shown next to it).  Fields it does not know are ignored."""
    from .agents import AgentOptionError, AgentTest, compile_pattern, split_names

    errors: dict[str, str] = {}
    names: list[str] = []
    pattern = None
    try:
        names = split_names([fields.get("agents") or ""])
    except AgentOptionError as exc:
        errors["agents"] = str(exc)
    raw = (fields.get("agent_pattern") or "").strip()
    if raw:
        try:
            pattern = compile_pattern(raw)
        except AgentOptionError as exc:
            errors["agent_pattern"] = str(exc)
    return {"agent_test": AgentTest(names, pattern)}, errors


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
