"""Synthetic chats for the tests: a seeded generator of customer-service conversations.

The suite must pass in a bare clone, so the tests that need hundreds or thousands of
conversations (whole-file audits, the kill test) generate them here instead of reading
third-party data.  The lines are written for this project: e-commerce, telecom, airline
and bank questions, replies that follow the handbook and replies that break it (vague
wording, bare fillers, holds without an apology, no greeting, no closing), with and
without timestamps.  Measurements on real chats live in bench/.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

QUESTIONS = [
    "我的快递到哪了",
    "订单什么时候发货",
    "这个可以开发票吗",
    "地址可以帮我改一下吗",
    "退货运费谁出",
    "手机屏幕碎了能保修吗",
    "话费怎么突然扣了二十块",
    "流量套餐怎么取消",
    "航班延误了可以改签吗",
    "行李超重怎么收费",
    "信用卡账单日是几号",
    "转账一直没到账",
    "优惠券为什么用不了",
    "退款多久能到账",
    "商品有质量问题怎么处理",
    "可以货到付款吗",
    "赠品什么时候补发",
    "会员积分怎么兑换",
]
GREETINGS = [
    "您好，很高兴为您服务，请问有什么可以帮您？",
    "亲，您好，我是客服小{n}，请问有什么可以帮您的吗？",
    "您好，欢迎光临，请问有什么可以帮到您？",
]
ANSWERS = [
    "您的订单已经从北京发出，预计3月5日送达。",
    "已为您修改好收货地址，请您核对一下。",
    "可以开具电子发票，下单后在订单详情里申请即可。",
    "质量问题的退货运费由我们承担，您放心。",
    "屏幕碎裂属于人为损坏，不在保修范围内，可以付费维修。",
    "这二十元是本月的增值业务费，已为您退订该业务。",
    "延误超过两小时可以免费改签一次，我这边为您办理。",
    "退款会在1到3个工作日内原路退回。",
    "积分可以在会员中心兑换优惠券或者礼品。",
]
VAGUE = [
    "大概明天能到吧。",
    "这个我也不清楚，差不多三天左右吧。",
    "应该是可以的，可能要等一等。",
    "估计下周才有货。",
]
FILLERS = ["哦", "好吧", "恩", "嗯嗯", "哦哦"]
HOLDS_BARE = ["我查一下", "稍等", "等一下我看看"]
HOLDS_POLITE = [
    "不好意思，请您稍等，我帮您查询一下。",
    "抱歉让您久等了，正在为您核实，请稍候。",
]
CLOSINGS = [
    "请问还有其他可以帮您的吗？感谢您的咨询，祝您生活愉快！",
    "感谢您的耐心等待，祝您购物愉快，再见！",
    "还有其他问题随时联系我们，祝您生活愉快。",
]
THANKS = ["好的谢谢", "知道了", "行吧", "好的", "谢谢你"]
AGENTS = ["wang", "li", "zhao", "qian", "sun", "zhou"]


def conversation(rng: random.Random, n: int, *, timed: bool) -> dict:
    """One conversation; about half break at least one norm."""
    turns: list[dict] = []
    clock = datetime(2024, 3, 1, 9, 0) + timedelta(minutes=7 * n)

    def say(role: str, text: str, wait: tuple[int, int] = (2, 40)) -> None:
        nonlocal clock
        clock += timedelta(seconds=rng.randint(*wait))
        turn = {"role": role, "text": text}
        if timed:
            turn["ts"] = clock.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        turns.append(turn)

    say("customer", rng.choice(["在吗", "你好", "人工客服", rng.choice(QUESTIONS)]))
    if rng.random() < 0.8:
        say("agent", rng.choice(GREETINGS).format(n=rng.choice("王李赵钱")), (1, 9))
    for _ in range(rng.randint(1, 3)):
        say("customer", rng.choice(QUESTIONS))
        roll = rng.random()
        if roll < 0.15:
            say("agent", rng.choice(HOLDS_BARE))
        elif roll < 0.35:
            say("agent", rng.choice(HOLDS_POLITE))
        if rng.random() < 0.2:
            say("agent", rng.choice(VAGUE), (5, 90))
        else:
            say("agent", rng.choice(ANSWERS), (5, 90))
        say("customer", rng.choice(THANKS))
        if rng.random() < 0.15:
            say("agent", rng.choice(FILLERS))
    if rng.random() < 0.75:
        say("agent", rng.choice(CLOSINGS))
    return {
        "id": f"gen-{n:05d}",
        "agent": rng.choice(AGENTS),
        "channel": "web",
        "turns": turns,
    }


def conversations(count: int, *, seed: int = 7, timed_share: float = 0.5) -> list[dict]:
    """`count` conversations, the same for the same seed."""
    rng = random.Random(seed)
    return [conversation(rng, n, timed=rng.random() < timed_share) for n in range(count)]


def write_jsonl(path: Path, count: int, *, seed: int = 7) -> Path:
    """Write `count` generated conversations as JSONL (the canonical import form)."""
    with open(path, "w", encoding="utf-8") as fh:
        for rec in conversations(count, seed=seed):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path
