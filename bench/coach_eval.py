"""Precision / recall / F1 per label and Spearman(score, rating) on the dev labels.

Compares the coach with a plain keyword checker (substring matches on agent turns,
as cloud QA products configure by default). Usage:

    python bench/coach_eval.py [--data DIR] [--set all|jd|helpdesk-A|helpdesk-B] [--misses LABEL]

Sets: `jd` is the JD.com dev labels in DATA; `helpdesk-A` and `helpdesk-B` are 50 + 50
Weibo helpdesk conversations of other industries (DATA/helpdesk_weibo_sample.jsonl),
labelled here by LABELING.md by a labeller who never read the rules
(bench/labels/). Half B is held out: its misses are printed only with `--set helpdesk-B`.

`--misses LABEL` also prints the false positives and false negatives of one label.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coach.checker import Checker  # noqa: E402
from coach.scoring import spearman  # noqa: E402
from coach.transcripts import Conversation, load_path  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
TURN_LABELS = ("filler", "filler_opener", "vague", "improper", "wait_no_apology")
CONV_LABELS = ("no_greeting", "no_closing")
LABELS = TURN_LABELS + CONV_LABELS
TARGETS = {
    "filler": (0.9, 0.9),
    "filler_opener": (0.85, 0.85),
    "vague": (0.8, 0.75),
    "improper": (0.6, 0.6),
    "wait_no_apology": (0.85, 0.85),
    "no_greeting": (0.9, 0.9),
    "no_closing": (0.9, 0.9),
}
# The plain keyword checker: substring lists as a cloud QA product ships them.
KW = {
    "filler": ["哦", "嗯", "恩", "好吧"],
    "vague": ["可能", "应该", "大概", "差不多", "好像", "估计", "不清楚", "不知道"],
    "improper": ["绝对", "保证", "一定", "肯定", "百分百", "微信", "QQ", "滚", "不归我管"],
    "hold": ["稍等", "稍候", "等一下"],
    "apology": ["抱歉", "不好意思", "对不起"],
    "greeting": ["您好", "你好"],
    "closing": ["再见", "感谢", "谢谢", "祝您", "还有其他", "还有什么"],
}
BASE_WEIGHTS = {
    "filler": 4,
    "filler_opener": 2,
    "vague": 4,
    "improper": 8,
    "wait_no_apology": 3,
    "no_greeting": 5,
    "no_closing": 4,
}


def keyword_checker(conv: Conversation) -> set[tuple]:
    """Labels a substring checker would give: {(turn, label)} and {(None, conv label)}."""
    out: set[tuple] = set()
    agent = [i for i, t in enumerate(conv.turns) if t.role == "agent"]
    for i in agent:
        text = conv.turns[i].text
        if any(k in text for k in KW["filler"]):
            out.add((i, "filler"))
            out.add((i, "filler_opener"))
        if any(k in text for k in KW["vague"]):
            out.add((i, "vague"))
        if any(k in text for k in KW["improper"]):
            out.add((i, "improper"))
        if any(k in text for k in KW["hold"]) and not any(k in text for k in KW["apology"]):
            out.add((i, "wait_no_apology"))
    if agent:
        if not any(k in conv.turns[agent[0]].text for k in KW["greeting"]):
            out.add((None, "no_greeting"))
        if not any(k in conv.turns[agent[-1]].text for k in KW["closing"]):
            out.add((None, "no_closing"))
    return out


def gold_set(label: dict) -> set[tuple]:
    out = {(int(t), lab) for t, labs in label["turns"].items() for lab in labs}
    out |= {(None, lab) for lab in label["conv"]}
    return out


def coach_set(report) -> set[tuple]:
    out = set()
    for f in report.findings:
        if f["category"] in CONV_LABELS:
            out.add((None, f["category"]))
        elif f["category"] in TURN_LABELS:
            out.add((f["turn"], f["category"]))
    return out


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


HELPDESK_LABELS = ROOT / "bench" / "labels"
SETS = {
    # name: (conversations file in DATA, labels file, what it is)
    "jd": ("transcripts_sample.jsonl", None, "JD.com chats, supervisor labels (dev)"),
    "helpdesk-A": (
        "helpdesk_weibo_sample.jsonl",
        HELPDESK_LABELS / "helpdesk_weibo_A.jsonl",
        "Weibo helpdesk (telecom, phones, airlines, shops), blind labels, half A (read)",
    ),
    "helpdesk-B": (
        "helpdesk_weibo_sample.jsonl",
        HELPDESK_LABELS / "helpdesk_weibo_B.jsonl",
        "Weibo helpdesk, blind labels, half B (held out: never tuned on)",
    ),
}


def evaluate(checker: Checker, by_id: dict, labels: list[dict], misses_of: str | None):
    """Per-label [tp, fp, fn] of the coach and the keyword baseline, the scores, the
    ratings and (for `misses_of`) the coach's false positives and negatives."""
    counts = {name: {lab: [0, 0, 0] for lab in LABELS} for name in ("coach", "keyword")}
    scores: dict[str, list[float]] = {"coach": [], "keyword": []}
    ratings = []
    misses = []
    for label in labels:
        conv = by_id[label["id"]]
        gold = gold_set(label)
        report = checker.check_conversation(conv)
        for name, pred in (("coach", coach_set(report)), ("keyword", keyword_checker(conv))):
            for lab in LABELS:
                g = {x for x in gold if x[1] == lab}
                p = {x for x in pred if x[1] == lab}
                c = counts[name][lab]
                c[0] += len(g & p)
                c[1] += len(p - g)
                c[2] += len(g - p)
                if name == "coach" and lab == misses_of:
                    misses += [("FP", conv, x) for x in p - g] + [("FN", conv, x) for x in g - p]
            if name == "coach":
                scores[name].append(report.score)
            else:
                scores[name].append(100 - sum(BASE_WEIGHTS[lab] for _, lab in pred))
        ratings.append(label["rating"])
    return counts, scores, ratings, misses


def print_table(title: str, counts: dict, scores: dict, ratings: list) -> None:
    print(title)
    head = f"{'label':<16}{'gold':>5} | {'coach P':>8}{'R':>6}{'F1':>6} | {'keyword P':>10}{'R':>6}{'F1':>6}"
    print(head + " | target P/R")
    print("-" * (len(head) + 13))
    for lab in LABELS:
        tp, fp, fn = counts["coach"][lab]
        p, r, f = prf(tp, fp, fn)
        bp, br, bf = prf(*counts["keyword"][lab])
        tgt = "{:.2f}/{:.2f}".format(*TARGETS[lab])
        print(
            f"{lab:<16}{tp + fn:>5} | {p:>8.2f}{r:>6.2f}{f:>6.2f} | {bp:>10.2f}{br:>6.2f}{bf:>6.2f} | {tgt}"
        )
    print(
        f"Spearman(score, rating): coach {spearman(scores['coach'], ratings):.3f}  "
        f"keyword {spearman(scores['keyword'], ratings):.3f}  (target >= 0.5)\n"
    )


def print_misses(misses: list) -> None:
    for kind, conv, (turn, lab) in sorted(misses, key=lambda m: (m[0], m[1].id)):
        if turn is None:
            agent = [t for t in conv.turns if t.role == "agent"]
            turn_text = (agent[0] if lab == "no_greeting" else agent[-1]).text if agent else ""
        else:
            turn_text = conv.turns[turn].text
        print(f"{kind} {conv.id[-6:]} {turn} {lab}: {turn_text[:140]!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--misses", choices=LABELS)
    ap.add_argument(
        "--set",
        choices=["all", *SETS],
        default="all",
        help="which labelled set(s) to measure (default: all, side by side)",
    )
    ap.add_argument(
        "--labels",
        type=Path,
        help="labels file in the dev format for --set jd (default: DATA/transcripts_labels_dev.jsonl)",
    )
    args = ap.parse_args()
    names = list(SETS) if args.set == "all" else [args.set]
    checker = Checker()
    results = {}
    loaded: dict[str, tuple] = {}
    for name in names:
        conv_file, labels_path, what = SETS[name]
        if name == "jd":
            labels_path = args.labels or args.data / "transcripts_labels_dev.jsonl"
        if conv_file not in loaded:
            convs, errors = load_path(args.data / conv_file)
            loaded[conv_file] = ({c.id: c for c in convs}, errors)
        by_id, errors = loaded[conv_file]
        labels = [json.loads(line) for line in open(labels_path, encoding="utf-8")]
        t0 = time.perf_counter()
        counts, scores, ratings, misses = evaluate(checker, by_id, labels, args.misses)
        elapsed = time.perf_counter() - t0
        title = (
            f"[{name}] {what}: {len(labels)} conversations, "
            f"load errors: {len(errors)}, {elapsed:.2f}s"
        )
        print_table(title, counts, scores, ratings)
        if args.misses and (name != "helpdesk-B" or args.set == "helpdesk-B"):
            print_misses(misses)  # half B's misses only when asked for by name
            print()
        results[name] = (counts, scores, ratings)
    if len(results) > 1:
        print("side by side: coach F1 (keyword F1) per label; gold counts in brackets")
        print(f"{'label':<16}" + "".join(f"{n:>22}" for n in results))
        for lab in LABELS:
            row = f"{lab:<16}"
            for counts, _, _ in results.values():
                tp, fp, fn = counts["coach"][lab]
                f = prf(tp, fp, fn)[2]
                kf = prf(*counts["keyword"][lab])[2]
                row += f"{f'{f:.2f} ({kf:.2f}) [{tp + fn}]':>22}"
            print(row)
        row = f"{'Spearman':<16}"
        for _, scores, ratings in results.values():
            cell = f"{spearman(scores['coach'], ratings):.2f} ({spearman(scores['keyword'], ratings):.2f})"
            row += f"{cell:>22}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
