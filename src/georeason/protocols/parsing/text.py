"""The text every reader sees: Unicode normalisation that keeps the answer's meaning
(:func:`normalize_text`) and the answer region of a completion (:func:`split_completion`)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

MAX_COMPLETION_CHARS = 20_000
"""The parser reads at most this many characters from the start of a completion."""

MAX_ANSWER_CHARS = 4_000
"""…and at most this many from the end of the answer region."""

# ---------------------------------------------------------------------------
# Text normalisation
# ---------------------------------------------------------------------------

# Applied before NFKC, because NFKC maps the masculine ordinal "º" (often typed
# as a degree sign) to "o" and the ring above "˚" to a combining character.
_PRE_NFKC = (("º", "°"), ("˚", "°"), ("\u2218", "°"))

# Applied after NFKC (which already maps unicode spaces, full-width digits and
# full-width punctuation to ASCII). NFKC turns the double prime "″" into two
# primes, so primes become apostrophes and the scanner reads "''" as seconds.
_POST_NFKC = (
    ("\u2032", "'"),  # prime
    ("\u2019", "'"),  # right single quotation mark
    ("\u2018", "'"),
    ("\u02b9", "'"),  # modifier letter prime
    ("\u00b4", "'"),  # acute accent used as a prime
    ("\u201d", '"'),  # right double quotation mark
    ("\u201c", '"'),
    ("\u02ba", '"'),
    ("\u2212", "-"),  # minus sign
    ("\u2010", "-"),  # hyphen
    ("\u2011", "-"),  # non-breaking hyphen
    ("\u2012", "-"),  # figure dash
    ("\u2013", " "),  # en dash: a separator ("48.85 – 2.35"), not a minus
    ("\u2014", " "),  # em dash
    ("\u200b", ""),  # zero-width space, joiners, word joiner, BOM
    ("\u200c", ""),
    ("\u200d", ""),
    ("\u2060", ""),
    ("\ufeff", ""),
)


def normalize_text(text: str) -> str:
    """Map look-alike characters to ASCII so the scanners stay simple.

    Full-width digits and colons, unicode spaces, unicode minus signs, primes
    and curly quotes become their ASCII counterparts; ``º`` and ``˚`` become
    ``°``; tabs become spaces and ``\\r`` newlines. Letters (accents, CJK) are
    kept as they are, up to NFKC.
    """
    # str.replace guarded by `in` (both C loops) is far faster than str.translate
    # with a dict table, which costs a dict lookup per character.
    if "\t" in text:
        text = text.replace("\t", " ")
    if "\r" in text:
        text = text.replace("\r", "\n")
    if text.isascii():
        return text
    for src, dst in _PRE_NFKC:
        if src in text:
            text = text.replace(src, dst)
    if not unicodedata.is_normalized("NFKC", text):  # the quick check is much cheaper than normalising
        text = unicodedata.normalize("NFKC", text)
    for src, dst in _POST_NFKC:
        if src in text:
            text = text.replace(src, dst)
    return text


# ---------------------------------------------------------------------------
# Answer region
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class Region:
    """Where the answer and the reasoning are in a completion.

    ``text`` is the part of the completion that was read (capped, trailing
    end-of-turn tokens removed); ``answer`` is at most :data:`MAX_ANSWER_CHARS`
    long (its end is kept); ``errors`` lists the structural problems.
    """

    text: str
    reasoning: str
    answer: str
    answer_tag: bool  # the answer came from inside <answer>…</answer>
    think_close: bool  # a </think> was seen
    truncated: bool  # the completion was longer than MAX_COMPLETION_CHARS
    errors: list[str] = field(default_factory=list)
    answer_cut: bool = False  # the answer region was longer than MAX_ANSWER_CHARS

    @property
    def capped(self) -> bool:
        """Whether the parser had to leave text unread (then no format is ok)."""
        return self.truncated or self.answer_cut


def _lowered(text: str) -> str:
    """Lower case that keeps character offsets: "İ" (U+0130) is the only
    character whose ``lower()`` is longer (two characters), so map it first."""
    if "\u0130" in text:
        text = text.replace("\u0130", "I")
    return text.lower()


# End-of-turn tokens some backends leave in decoded text; not part of the answer.
_EOS_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>", "<|end|>")


def _strip_eos(text: str) -> str:
    end = text.rstrip()
    for _ in range(4):  # bounded: "<|im_end|>" * 2000 must not cost 2000 slices
        tok = next((t for t in _EOS_TOKENS if end.endswith(t)), None)
        if tok is None:
            break
        end = end[: -len(tok)].rstrip()
    return end if len(end) < len(text) else text


def split_completion(text: str) -> Region:
    """Split a completion into reasoning and answer.

    Rules, in order:

    1. Only the first :data:`MAX_COMPLETION_CHARS` characters are read;
       trailing end-of-turn tokens (``<|im_end|>``, ``<|endoftext|>``,
       ``<|eot_id|>``, ``</s>``…) are dropped.
    2. If there is an ``<answer>`` after the last ``</think>`` (or no
       ``</think>``), the answer is inside the **last** ``<answer>``, up to the
       next ``</answer>``; without a closing tag it runs to the end (noted).
       Anything but whitespace after ``</answer>`` is noted.
    3. Else, if there is a ``</think>``, the answer is everything after the
       **last** one (a stray ``</answer>`` there ends it, noted).
    4. Else the whole text is the answer (the protocol decides whether that is
       an error: it is for geor and globe, not for plain).

    The reasoning is the text inside ``<think>…</think>`` when present (from the
    first ``<think>`` to the last ``</think>``), else the text before the answer.
    """
    errors: list[str] = []
    truncated = len(text) > MAX_COMPLETION_CHARS
    if truncated:
        errors.append(f"completion has {len(text)} characters; read the first {MAX_COMPLETION_CHARS}")
        text = text[:MAX_COMPLETION_CHARS]
    else:
        text = _strip_eos(text)

    # C-level searches on a lower-cased copy (tags in any case).
    low = _lowered(text)
    n_think_open = low.count("<think>")
    think_open = low.find("<think>")
    think_close = low.rfind("</think>")
    n_think_close = low.count("</think>")
    ans_open = low.rfind("<answer>")
    n_ans_open = low.count("<answer>")
    last_close_any = low.rfind("</answer>")

    if n_think_open > 1:
        errors.append(f"{n_think_open} <think> tags")
    if n_think_close > 1:
        errors.append(f"{n_think_close} </think> tags")
    if n_ans_open > 1:
        errors.append(f"{n_ans_open} <answer> tags; read the last")
    if think_close >= 0 and n_think_open == 0:
        errors.append("</think> without <think>")

    answer_tag = False
    if ans_open >= 0 and ans_open > think_close:
        answer_tag = True
        start = ans_open + len("<answer>")
        close = low.find("</answer>", start)
        if close < 0:
            errors.append("unclosed <answer>: read to the end")
            answer = text[start:]
        else:
            answer = text[start:close]
            if text[close + len("</answer>") :].strip():
                errors.append("text after </answer>")
        reasoning_end = ans_open
    elif think_close >= 0:
        if ans_open >= 0:
            errors.append("<answer> inside <think>; read the text after </think>")
        start = think_close + len("</think>")
        answer = text[start:]
        if last_close_any >= start:
            errors.append("</answer> without <answer>")
            rest = answer[last_close_any - start + len("</answer>") :]
            answer = answer[: last_close_any - start]
            if rest.strip():
                errors.append("text after </answer>")
        reasoning_end = think_close
    else:
        answer = text
        reasoning_end = 0
        if last_close_any >= 0:
            errors.append("</answer> without <answer>")
            if text[last_close_any + len("</answer>") :].strip():
                errors.append("text after </answer>")
            answer = text[:last_close_any]

    if think_close >= 0 and 0 <= think_open < think_close:
        reasoning = text[think_open + len("<think>") : think_close]
    elif think_close >= 0:
        reasoning = text[:think_close]
    else:
        reasoning = text[:reasoning_end]
    if think_open >= 0 and think_close < 0:
        errors.append("unclosed <think>")

    answer_cut = len(answer) > MAX_ANSWER_CHARS
    if answer_cut:
        errors.append(f"answer has {len(answer)} characters; read the last {MAX_ANSWER_CHARS}")
        answer = answer[-MAX_ANSWER_CHARS:]
    return Region(
        text=text,
        reasoning=reasoning.strip(),
        answer=answer,
        answer_tag=answer_tag,
        think_close=think_close >= 0,
        truncated=truncated,
        errors=errors,
        answer_cut=answer_cut,
    )
