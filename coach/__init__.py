"""Coaching checker: transcripts in, findings and a standardisation score out.

Library only (no Flask, no click). Entry points:

- `coach.transcripts.load_path(path_or_dir_or_"-")` -> (conversations, import errors)
- `coach.rules.load_rules(overlay_paths)` -> RulePack (default pack + team overlays)
- `coach.checker.Checker(pack).check_conversation(conv)` / `.check_reply(text, context, position)`
- `coach.report.run_check(...)` (behind `kbcoach check`) and `check_records(...)` (web API)
"""
