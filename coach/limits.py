"""Every size and time limit of the checker, in one place.

Input limits (an over-limit conversation is an unreadable record naming the limit,
never silently truncated; the live reply check answers 413):

- `MAX_TURNS`: turns in one conversation (files and the /check API)
- `MAX_TURN_CHARS`: characters in one turn of a conversation (a pasted document of
  some 20 pages in one message is still checked, within the time limit)
- `MAX_REPLY_CHARS`: characters of a draft reply and of each context turn
  (POST /api/v1/coach/check-reply)

Spreadsheets (.xlsx is a zip: its size on disk says little about its content):

- `MAX_XLSX_BYTES`: uncompressed size of the workbook's parts
- `MAX_TABLE_ROWS`: rows read from one sheet (the rest is reported, not read)
- `MAX_TABLE_COLUMNS`: columns read from one row

Rule word entries (checked when a pack loads or a team overlay is saved; the error
names the rule and the entry):

- `MAX_SLOTS`: slots of a phrase (`你 找 售后 … 去` has 4)
- `MAX_ALTERNATIVES`: alternatives of one slot (`售后/商家/快递` has 3)
- `MAX_GAP`: the largest `max_gap`
- `MAX_WORD_CHARS`: characters of one alternative
- `MAX_ENTRIES`: entries in one word list (a rule's `words`, or one list in `params`)

Time: `CHECK_SECONDS` bounds the work on one conversation; rules not finished by
then are reported as not checkable (with the turn reached) instead of running on.
"""

from __future__ import annotations

MAX_TURNS = 2000
MAX_TURN_CHARS = 50_000
MAX_REPLY_CHARS = 5000

MAX_XLSX_BYTES = 200 * 1024 * 1024
MAX_TABLE_ROWS = 200_000
MAX_TABLE_COLUMNS = 100

MAX_SLOTS = 5
MAX_ALTERNATIVES = 40
MAX_GAP = 10
MAX_WORD_CHARS = 30
MAX_ENTRIES = 300

CHECK_SECONDS = 2.0
