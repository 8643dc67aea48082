"""Calibration samples and their reviews, for every surface (the web pages today):
draw and keep a sample, let each supervisor review it on their own (a rating and a
verdict on each checker finding per conversation, and the findings the checker
missed), submit, and build the report.  The figures are computed by the pure
functions of core/calibration.py; the rows are kept by storage/calibration.py.

Blind review: a supervisor's pages show only their own answers; the report (every
reviewer's answers side by side) opens to those who submitted their review, or who
chose to read it without reviewing (an observer, who can no longer review that
sample).  A submitted review is final.  Every change is audit-logged."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping

from kb.store import now_iso
from storage import calibration as repo

from .calibration import (
    MAX_CANDIDATES,
    MAX_NOTE,
    MAX_SAMPLE,
    RATINGS,
    VERDICTS,
    CalibrationError,
    draw,
    mean_kappa,
    miss_counts,
    pair_agreement,
    rule_precision,
)

FINDING_KEYS = ("rule", "category", "turn", "match", "message", "level")
MAX_MATCH = 200


def _snapshot(findings_json: str | None) -> str:
    """The checker's findings of a conversation as a sample keeps them."""
    out = []
    for n, f in enumerate(json.loads(findings_json or "[]")):
        row = {k: f.get(k) for k in FINDING_KEYS}
        row["match"] = (row["match"] or "")[:MAX_MATCH]
        row["index"] = n
        out.append(row)
    return json.dumps(out, ensure_ascii=False)


def _item(row: dict) -> dict:
    return {**row, "findings": json.loads(row["findings"] or "[]")}


class Calibration:
    """Samples and reviews of one instance's database."""

    def __init__(self, database, log: Callable[[str, str, str, dict], None] | None = None):
        self.database = database
        self.log = log or (lambda actor, action, target, detail: None)

    # -- samples ------------------------------------------------------------------------

    def create(self, params: Mapping, *, by: str) -> int:
        """Draw a sample (parameters from core.calibration.parse_sample_form) and keep
        it; CalibrationError (with the form field) when there is nothing to draw or
        too much."""
        run_id = params.get("run_id")
        if run_id is not None and not repo.run_exists(self.database, run_id):
            raise CalibrationError("没有这个批次", field="run")
        since, until = params.get("since"), params.get("until")
        found = repo.candidates(
            self.database,
            since=since.isoformat() if since else None,
            before=(until + dt.timedelta(days=1)).isoformat() if until else None,
            run_id=run_id,
            agents=list(params.get("agents") or []),
            limit=MAX_CANDIDATES + 1,
        )
        if len(found) > MAX_CANDIDATES:
            raise CalibrationError(
                f"范围内的会话超过 {MAX_CANDIDATES} 个，请缩短时间段或指定客服", field="from"
            )
        if not found:
            raise CalibrationError(
                "该时间段（及所选批次、客服）内没有已完成质检的会话", field="range"
            )
        picked = draw(found, params["per_agent"], params["seed"])
        if len(picked) > MAX_SAMPLE:
            raise CalibrationError(
                f"样本将有 {len(picked)} 个会话，一个样本最多 {MAX_SAMPLE} 个："
                "请减少每位客服的会话数或指定客服",
                field="per_agent",
            )
        rows = {r["id"]: r for r in repo.audited_items(self.database, [p["id"] for p in picked])}
        items = [
            {
                "seq": seq,
                "item_id": p["id"],
                "run_id": rows[p["id"]]["run_id"],
                "agent": rows[p["id"]]["agent"] or "",
                "conv_id": rows[p["id"]]["conv_id"],
                "turns": rows[p["id"]]["turns"] or 0,
                "findings": _snapshot(rows[p["id"]]["findings"]),
            }
            for seq, p in enumerate(picked, 1)
        ]
        at = now_iso()
        name = params.get("name") or f"校准样本 {at[:10]}"
        sample = {
            "name": name,
            "created_by": by,
            "created_at": at,
            "seed": str(params["seed"]),
            "per_agent": params["per_agent"],
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "run_id": run_id,
            "agents": json.dumps(list(params.get("agents") or []), ensure_ascii=False),
            "size": len(items),
        }
        sample_id = repo.create_sample(self.database, sample, items)
        self.log(
            by,
            "calibration.create",
            str(sample_id),
            {"name": name[:200], "seed": sample["seed"], "conversations": len(items)},
        )
        return sample_id

    def sample(self, sample_id: int) -> dict:
        row = repo.get_sample(self.database, sample_id)
        if row is None:
            raise CalibrationError("校准样本不存在", 404)
        row["agents"] = json.loads(row["agents"] or "[]")
        return row

    def samples(self, limit: int = 50, offset: int = 0) -> list[dict]:
        return repo.samples(self.database, limit, offset)

    def count(self) -> int:
        return repo.sample_count(self.database)

    def items(self, sample_id: int) -> list[dict]:
        return [_item(r) for r in repo.sample_items(self.database, sample_id)]

    def item(self, sample_id: int, seq: int) -> dict:
        row = repo.sample_item(self.database, sample_id, seq)
        if row is None:
            raise CalibrationError("样本中没有这个会话", 404)
        return _item(row)

    # -- one reviewer -------------------------------------------------------------------

    def review(self, sample_id: int, reviewer: str) -> dict | None:
        return repo.get_review(self.database, sample_id, reviewer)

    def answers(self, sample_id: int, reviewer: str) -> tuple[dict[int, dict], dict[int, list]]:
        """The reviewer's own answers: {cal_item_id: {rating, verdicts}} and their
        misses by cal_item_id."""
        review = self.review(sample_id, reviewer)
        if review is None:
            return {}, {}
        answers = {
            a["cal_item_id"]: {"rating": a["rating"], "verdicts": json.loads(a["verdicts"])}
            for a in repo.answers(self.database, [review["id"]])
        }
        misses: dict[int, list] = {}
        for m in repo.misses(self.database, [review["id"]]):
            misses.setdefault(m["cal_item_id"], []).append(m)
        return answers, misses

    def _open_review(self, sample_id: int, reviewer: str) -> dict:
        review = repo.start_review(self.database, sample_id, reviewer, "open", now_iso())
        if review["status"] == "submitted":
            raise CalibrationError("你已提交本样本的评审，不能再修改", 409)
        if review["status"] == "observer":
            raise CalibrationError("你已选择只看报告，不能再评审本样本", 409)
        return review

    def save(self, sample_id: int, seq: int, reviewer: str, form: Mapping[str, str]) -> dict:
        """Keep the reviewer's rating (field `rating`) and a verdict on every finding
        (fields `v<index>`) of one conversation; errors by field, all at once."""
        self.sample(sample_id)
        item = self.item(sample_id, seq)
        errors: dict[str, str] = {}
        verdicts: dict[str, str] = {}
        for f in item["findings"]:
            value = str(form.get(f"v{f['index']}", "") or "")
            if value not in VERDICTS:
                errors[f"v{f['index']}"] = "请判断这条问题成立还是不成立"
            else:
                verdicts[str(f["index"])] = value
        rating = str(form.get("rating", "") or "").strip()
        if rating not in {str(r) for r in RATINGS}:
            errors["rating"] = "请给这个会话打 1 到 5 分"
        if errors:
            raise FormErrors(errors)
        review = self._open_review(sample_id, reviewer)
        if not repo.save_answer(
            self.database, review["id"], item["id"], int(rating), json.dumps(verdicts), now_iso()
        ):
            raise CalibrationError("你已提交本样本的评审，不能再修改", 409)
        self.log(
            reviewer,
            "calibration.answer",
            f"{sample_id}/{seq}",
            {
                "rating": int(rating),
                "confirmed": sum(v == "confirm" for v in verdicts.values()),
                "rejected": sum(v == "reject" for v in verdicts.values()),
            },  # fmt: skip
        )
        return item

    def add_miss(
        self,
        sample_id: int,
        seq: int,
        reviewer: str,
        form: Mapping[str, str],
        rules: Mapping[str, str],
    ) -> None:
        """Add a finding the checker missed: `rule` (an id of `rules`, rule → category),
        `turn` (1-based, as the page numbers turns) and an optional `note`."""
        self.sample(sample_id)
        item = self.item(sample_id, seq)
        errors: dict[str, str] = {}
        rule = str(form.get("rule", "") or "").strip()
        if rule not in rules:
            errors["rule"] = "请选择漏检的规则"
        raw_turn = str(form.get("turn", "") or "").strip()
        turn = (
            int(raw_turn) if raw_turn.isascii() and raw_turn.isdigit() and len(raw_turn) < 7 else 0
        )
        if not 1 <= turn <= max(int(item["turns"] or 0), 1):
            errors["turn"] = f"轮次应为 1 到 {max(int(item['turns'] or 0), 1)} 之间的整数"
        note = str(form.get("note", "") or "").strip()
        if len(note) > MAX_NOTE:
            errors["note"] = f"说明最多 {MAX_NOTE} 个字"
        if errors:
            raise FormErrors(errors)
        review = self._open_review(sample_id, reviewer)
        row = {
            "review_id": review["id"],
            "cal_item_id": item["id"],
            "rule": rule,
            "category": rules[rule],
            "turn": turn - 1,
            "note": note,
            "at": now_iso(),
        }
        if repo.add_miss(self.database, row) is None:
            raise CalibrationError("你已提交本样本的评审，不能再修改", 409)
        self.log(reviewer, "calibration.miss", f"{sample_id}/{seq}", {"rule": rule, "turn": turn})

    def delete_miss(self, sample_id: int, seq: int, reviewer: str, miss_id: int) -> None:
        self.item(sample_id, seq)
        review = self._open_review(sample_id, reviewer)
        if not repo.delete_miss(self.database, review["id"], miss_id):
            raise CalibrationError("没有这条漏检记录", 404)
        self.log(reviewer, "calibration.miss_delete", f"{sample_id}/{seq}", {"miss": miss_id})

    def unfinished(self, sample_id: int, reviewer: str) -> list[int]:
        """The seqs of conversations the reviewer has not fully answered yet."""
        answers, _ = self.answers(sample_id, reviewer)
        out = []
        for item in self.items(sample_id):
            a = answers.get(item["id"])
            if a is None or a["rating"] not in RATINGS:
                out.append(item["seq"])
            elif {str(f["index"]) for f in item["findings"]} - set(a["verdicts"]):
                out.append(item["seq"])
        return out

    def submit(self, sample_id: int, reviewer: str) -> None:
        """Submit the reviewer's review: every conversation answered, then final."""
        self.sample(sample_id)
        review = self.review(sample_id, reviewer)
        if review is not None and review["status"] != "open":
            raise CalibrationError("你已提交本样本的评审，不能再修改", 409)
        left = self.unfinished(sample_id, reviewer)
        if review is None or left:
            shown = "、".join(str(s) for s in left[:20]) + ("……" if len(left) > 20 else "")
            raise CalibrationError(f"还有 {len(left)} 个会话未评完（第 {shown} 个），请评完再提交")
        if not repo.submit_review(self.database, review["id"], now_iso()):
            raise CalibrationError("你已提交本样本的评审，不能再修改", 409)
        self.log(reviewer, "calibration.submit", str(sample_id), {})

    def observe(self, sample_id: int, reviewer: str) -> None:
        """Read the report without reviewing (then this sample cannot be reviewed)."""
        self.sample(sample_id)
        if self.review(sample_id, reviewer) is not None:
            raise CalibrationError("你已开始评审本样本：请评完并提交后查看报告", 409)
        repo.start_review(self.database, sample_id, reviewer, "observer", now_iso())
        self.log(reviewer, "calibration.observe", str(sample_id), {})

    def reviews(self, sample_id: int) -> list[dict]:
        """Who reviews the sample and how far (open, submitted, observer); no answers."""
        return repo.reviews(self.database, sample_id)

    def may_read_report(self, sample_id: int, reviewer: str) -> bool:
        review = self.review(sample_id, reviewer)
        return review is not None and review["status"] in ("submitted", "observer")

    # -- the report -----------------------------------------------------------------------

    def report(self, sample_id: int) -> dict:
        """Agreement between the supervisors who submitted, and between them and the
        checker (see core/calibration.py for how each figure is computed)."""
        sample = self.sample(sample_id)
        items = self.items(sample_id)
        reviews = repo.reviews(self.database, sample_id)
        done = [r for r in reviews if r["status"] == "submitted"]
        names = {r["id"]: r["reviewer"] for r in done}
        reviewers = [r["reviewer"] for r in done]
        verdicts: dict[str, dict] = {r: {} for r in reviewers}
        ratings: dict[str, dict] = {r: {} for r in reviewers}
        for a in repo.answers(self.database, list(names)):
            who = names[a["review_id"]]
            ratings[who][a["cal_item_id"]] = a["rating"]
            for idx, v in json.loads(a["verdicts"]).items():
                verdicts[who][f"{a['cal_item_id']}:{idx}"] = v
        misses = [
            {**m, "reviewer": names[m["review_id"]]}
            for m in repo.misses(self.database, list(names))
        ]
        pairs = pair_agreement(verdicts, ratings, reviewers)
        judged = []
        conversations = []
        by_item = {i["id"]: i for i in items}
        for item in items:
            findings = []
            for f in item["findings"]:
                key = f"{item['id']}:{f['index']}"
                given = {r: verdicts[r].get(key) for r in reviewers}
                judged += [(f["rule"], f["category"], v) for v in given.values() if v]
                values = {v for v in given.values() if v}
                findings.append({**f, "verdicts": given, "agree": len(values) <= 1})
            conversations.append(
                {
                    **item,
                    "findings": findings,
                    "ratings": {r: ratings[r].get(item["id"]) for r in reviewers},
                    "disagreements": sum(not f["agree"] for f in findings),
                    "misses": [m for m in misses if m["cal_item_id"] == item["id"]],
                }
            )
        for m in misses:
            m["seq"] = by_item[m["cal_item_id"]]["seq"] if m["cal_item_id"] in by_item else None
        return {
            "sample": sample,
            "reviewers": reviewers,
            "pending": [r["reviewer"] for r in reviews if r["status"] == "open"],
            "pairs": pairs,
            "mean_kappa": mean_kappa(pairs),
            "conversations": conversations,
            "precision": rule_precision(judged),
            "miss_rules": miss_counts(misses),
            "misses": misses,
        }


class FormErrors(CalibrationError):
    """Several form fields refused at once: `errors` maps each to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("；".join(errors.values()), field=next(iter(errors)))
        self.errors = errors
