"""The words a question leaves for semantic and full-text search, once time, negation and place are taken.

Request words ('帮我找', 'show me'), photo words ('照片', 'pictures of') and particles are peeled off both
ends of every leftover piece; what is in the middle stays as it was written.
"""

from __future__ import annotations

import re

from smartalbum.search.query.common import alternation

__all__ = ["semantic_remainder", "strip_fillers"]

_SEGMENT_SPLIT = re.compile(r"\x00+|[,，。!?！？;；、()（）\[\]【】{}\"“”「」『』]|[.:：](?=\s|$)")
_LEAD_ZH = (
    "帮我找一下", "帮我找找", "帮我找出", "帮我找", "帮我搜", "请帮我", "帮我", "给我看看", "给我看",
    "给我找", "给我", "请", "我想看看", "我想看", "我想找", "我要看", "我要找", "想看", "想找", "找出来",
    "找出", "找到", "找一下", "找找", "找", "搜索", "搜一下", "搜", "查找一下", "查找", "查一下", "查看",
    "显示", "展示", "看看", "有没有", "所有的", "所有", "全部的", "全部", "一些", "那些", "那张", "一张",
    "几张", "哪些", "哪张", "有关", "关于", "含有", "包含", "带有", "有", "我们的", "我的", "我拍的",
    "拍摄的", "拍下的", "拍的", "拍摄", "时候拍的", "时拍的", "的时候", "的", "在", "于", "我们", "我", "去",
)  # fmt: skip
_TAIL_ZH = (
    "的照片", "的相片", "的图片", "的图像", "的图", "照片", "相片", "图片", "图像", "的那张", "的那些",
    "那张", "那些", "的时候", "时候", "拍摄的", "拍下的", "拍的", "拍摄", "有哪些", "有吗", "吗", "呢",
    "吧", "啊", "了", "的", "时", "在",
)  # fmt: skip
_LEAD_EN = (
    r"show\s+me", "show", r"find\s+me", "find", r"search\s+for", "search", r"look(?:ing)?\s+for", r"get\s+me",
    r"give\s+me", r"i\s+want\s+to\s+see", r"i\s+want", r"i'?d\s+like", r"can\s+you\s+(?:find|show)(?:\s+me)?",
    r"do\s+(?:i|we)\s+have", r"are\s+there", r"is\s+there", r"where\s+(?:is|are)", "please", "all", "my",
    "our", "some", "any", "the",
    r"(?:photo|picture|pic|image|shot|snapshot)s?(?:\s+(?:of|from|with|showing))?",
    "taken", "shot", "captured", r"(?:i|we)\s+took", "that", "which", "in", "on", "at", "from", "during",
    "of", "with", "and", "or",
)  # fmt: skip
_TAIL_EN = (
    r"(?:photo|picture|pic|image|shot|snapshot)s?", "taken", "captured", r"(?:that\s+)?(?:i|we)\s+took",
    "from", "in", "on", "at", "during", "of", "with", "and", "or", "the", "please",
    r"(?:that|which|who)(?:\s+(?:are|is|were|was))?",
)  # fmt: skip
# Peeled off both ends of every piece of leftover text, repeatedly: request words, photo words, particles.
_LEAD = re.compile(rf"^(?:{alternation(_LEAD_ZH)}|(?:{'|'.join(_LEAD_EN)})\b)\s*", re.IGNORECASE)
_TAIL = re.compile(
    rf"\s*(?:{alternation(_TAIL_ZH)}|(?<![合拍驾执护牌夕写关对普残映观参按依遵])照|\b(?:{'|'.join(_TAIL_EN)}))$",
    re.IGNORECASE,
)
_EDGE_PUNCTUATION = " '’\"-_~.…·•*#|/\\"


def strip_fillers(segment: str) -> str:
    """Peel request words and photo words off both ends: '找出所有有猫的日落照片' → '猫的日落'."""
    previous = None
    while segment != previous:
        previous = segment
        segment = _TAIL.sub("", _LEAD.sub("", segment.strip(_EDGE_PUNCTUATION))).strip()
    return segment


def semantic_remainder(work: str) -> str:
    """What is left of `work` (consumed parts split it into pieces), without filler, single-spaced."""
    pieces = (strip_fillers(part) for part in _SEGMENT_SPLIT.split(work))
    return " ".join(" ".join(p for p in pieces if p).split())
