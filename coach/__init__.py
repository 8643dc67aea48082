"""Coaching checker: transcripts in, findings and a standardisation score out.

Library only (no Flask, no click). Entry points:

- `coach.transcripts.load_path(path_or_dir_or_"-", agent_names=…, agent_pattern=…,
  mapping=…, fmt=…)` -> (conversations, import errors); formats in coach/importers.py
  (JSONL, CSV/XLSX), coach/chatlog.py (WeChat/QQ text), coach/messages.py (企业微信,
  七鱼, Feishu, Chatwoot JSON), coach/mapping.py (any JSON/CSV through a YAML mapping);
  who the agents are in coach/agents.py
- `coach.rules.load_rules(overlay_paths)` -> RulePack (default pack + team overlays)
- `coach.checker.Checker(pack).check_conversation(conv)` / `.check_reply(text, context, position)`
- `coach.report.run_check(...)` (behind `kbcoach check`) and `check_records(...)` (web API)
"""
