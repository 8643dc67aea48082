"""Files round trip: keep a folder of Markdown articles (as teams keep in git) and the
database in step, without ever overwriting a change either way.

The state of the last sync is kept in the database (``kb_sync``), per folder and
article: where the file is, the article's version then, and the hash of the content
both sides had.  A side "changed since the last sync" when its content hash differs
from that one.  The folder is named by the id in its ``.kbcoach-sync`` file (written
on the first sync, meant to be committed with the articles), not by its path: a fresh
clone in another place (a CI job) is the same folder.  In the database rather than in
a state file in the folder, because the state describes one database's relation to the
folder: a second database (a trainer's own instance, a staging copy) keeps its own,
a backup restores the state that goes with its articles, and git never sees a state
file change (or a merge conflict in one) on every sync.

Content, not versions, decides: an edit undone, or the same edit made on both sides,
is no change and no conflict; a folder never synced with this database (no state)
is compared as it is: equal articles are recorded, different ones are conflicts.

Every write to the database goes through ``kb.authoring.save_article`` (the editor's
path: validation, a revision, compare-and-set on the version read, the audit log).
"""

from .common import MARKER, QUIET, SyncItem, SyncReport, content_hash, diff_summary, folder_id
from .exporting import export_folder
from .importing import import_folder

__all__ = [
    "MARKER",
    "QUIET",
    "SyncItem",
    "SyncReport",
    "content_hash",
    "diff_summary",
    "export_folder",
    "folder_id",
    "import_folder",
]
