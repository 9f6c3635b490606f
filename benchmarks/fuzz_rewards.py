"""Fuzz every answer parser and every registered reward with generated hostile completions.

Issue 13 ("a standing guard"): >= 1,000,000 completions — random unicode, token soup,
mutated and truncated answers, huge numbers, nested and unclosed tags, long names
(repeated comma qualifiers included), non-string objects (deep lists, raising
``repr``, bytes, ints past Python's digit limit) — each through every protocol's
``parse`` and every reward of the registry (``globe_locatability`` over the offline
``KeywordJudge``), one completion per call, with a truth row that is hostile itself
one time in twenty. Reports:

- exceptions, by function and type, with the first examples (a parser or a reward
  must never raise on a completion or a column value);
- out-of-range rewards: not None and not a finite float in the reward's declared
  range (``REWARD_RANGES``), or a list of the wrong length;
- time per completion (all parsers + all rewards): p50, p99, p99.9, max, and the
  slowest completions; per-function p99 and max. Anchor, measured in the same run:
  the same calls on a well-formed Geo-R answer (median), so the p99 reads as a ratio.

Seeded and reproducible; pinned to one core. ``--max-minutes`` stops early and says so.

    python benchmarks/fuzz_rewards.py                    # 1,000,000 completions
    python benchmarks/fuzz_rewards.py --n 20000 --seed 1 # a quick look
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import math
import random
import reprlib
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from georeason.geo.gazetteer import gazetteer
from georeason.protocols import PROTOCOLS
from georeason.rewards import REWARD_RANGES, REWARDS, KeywordJudge, make_globe_locatability

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hostile import HostileStr, Unprintable  # the tests' hostile objects, one definition

TOKENS = [
    "<think>", "</think>", "<answer>", "</answer>", "<THINK>", "<ANSWER>", "Country:", "country: ",
    "City:", "city: ", "State:", "Province:", "Continent:", "Coordinates:", "**", "`", "lat", "lon",
    "latitude", "longitude", "N", "S", "E", "W", "°", "'", '"', "″", "′", "(", ")", "[", "]", "{", "}",
    ",", ";", ":", "=", "/", "-", "−", "+", ".", " ", "\n", "\t", "\u00a0", "\u200b", "\ufeff", "48",
    "2.35", "-33.8", "151.2", "90", "180", "90.0001", "999", "0", "1e308", "nan", "inf", "-0.0",
    "12345678901234567890", "４８", "．", "İ", "中国", "成都", "Île", "Paris", "France", "USA", "NYC",
    "Georgia", "Springfield", ", IN", ", France", "or", "likely", "N/A", "Final answer:", "json",
    '{"lat": 40.7, "lon": -74.0}', "48°51'24\"N 2°21'03\"E", "12.5S, 130.8E", "\x00", "\r", "\\",
]  # fmt: skip
CATEGORIES = {  # share of the completions
    "unicode": 0.15,
    "tokens": 0.20,
    "mutated": 0.15,
    "truncated": 0.10,
    "huge_numbers": 0.10,
    "nested_tags": 0.08,
    "long_names": 0.12,
    "non_string": 0.10,
}


class Generator:
    """Seeded hostile completions and truth rows over real gazetteer places."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        g = gazetteer()
        big = np.flatnonzero(g.population >= 50_000)
        pick = np.random.default_rng(seed).choice(big, size=min(5000, len(big)), replace=False)
        self.places = [
            (str(g.name[i]), str(g.admin1[i]), str(g.country_code[i]), float(g.lat[i]), float(g.lon[i]))
            for i in pick
        ]
        self.cats = list(CATEGORIES)
        self.weights = list(CATEGORIES.values())

    def place(self) -> tuple[str, str, str, float, float]:
        return self.rng.choice(self.places)

    def answer(self) -> str:
        city, admin1, cc, lat, lon = self.place()
        if self.rng.random() < 0.5:
            return (
                f"<think>Signs and a church; palm trees.</think><answer>Country: {cc}\nState: {admin1}\n"
                f"City: {city}\nCoordinates: ({lat:.4f}, {lon:.4f})</answer>"
            )
        return f"<think>A tram and a flag.</think><answer>country: {cc}\ncity: {city}</answer>"

    def unicode_text(self, n: int) -> str:
        r = self.rng
        out = []
        for _ in range(n):
            k = r.random()
            if k < 0.5:
                out.append(chr(r.randrange(32, 0x250)))
            elif k < 0.9:
                out.append(chr(r.randrange(0x250, 0x30000)))
            else:
                out.append(
                    chr(
                        r.choice(
                            [r.randrange(0, 32), r.randrange(0xD800, 0xE000), r.randrange(0xE000, 0x110000)]
                        )
                    )
                )
        return "".join(out)

    def completion(self) -> tuple[str, Any]:
        r = self.rng
        cat = r.choices(self.cats, self.weights)[0]
        if cat == "unicode":
            return cat, self.unicode_text(int(r.expovariate(1 / 200)) % 3000)
        if cat == "tokens":
            return cat, "".join(r.choice(TOKENS) for _ in range(r.randrange(0, 150)))
        if cat == "mutated":
            s = list(self.answer())
            for _ in range(r.randrange(1, 12)):
                i = r.randrange(len(s) + 1)
                op = r.random()
                if op < 0.33 and s:
                    del s[min(i, len(s) - 1)]
                elif op < 0.66:
                    s.insert(i, r.choice(TOKENS))
                else:
                    s[i:i] = s[i : i + r.randrange(1, 40)]  # duplicate a run
            return cat, "".join(s)
        if cat == "truncated":
            s = self.answer()
            return cat, s[: r.randrange(0, len(s) + 1)]
        if cat == "huge_numbers":
            big = r.choice(
                [
                    "9" * r.randrange(300, 6000),
                    "1e" + str(r.randrange(300, 10**6)),
                    "-" + "0" * r.randrange(10, 3000) + "1",
                    "0." + "0" * r.randrange(10, 3000) + "1",
                    "1" + "," + "000" * r.randrange(1, 500),
                    r.choice(["nan", "inf", "-inf", "1e308", "-1e308", "4.9e-324", "１２３．４５"]),
                ]
            )
            other = r.choice([big, "2.35", "-181", "91"])
            form = r.choice(
                ["({a}, {b})", "[{a},{b}]", "{a}° N, {b}° E", '{{"lat": {a}, "lon": {b}}}', "{a} {b}"]
            )
            pair = form.format(a=big, b=other) if r.random() < 0.5 else form.format(a=other, b=big)
            return cat, f"<answer>Country: France\nCity: Paris\nCoordinates: {pair}</answer>"
        if cat == "nested_tags":
            k = r.randrange(1, 3000)
            tag = r.choice(["answer", "think", "ANSWER", "Think"])
            body = r.choice(["", "Coordinates: (1, 2)", "country: France\ncity: Paris"])
            close = r.random() < 0.5
            return cat, f"<{tag}>" * k + body + (f"</{tag}>" * r.randrange(0, k + 1) if close else "")
        if cat == "long_names":
            city, _, cc, lat, lon = self.place()
            name = r.choice(
                [
                    city * r.randrange(20, 600),
                    city
                    + r.choice([", IN", ", France", ", Georgia", ", US", ", Texas"]) * r.randrange(3, 400),
                    self.unicode_text(r.randrange(200, 3000)),
                    "".join(r.choice("abcdefghij ,.-'") for _ in range(r.randrange(200, 3000))),
                ]
            )
            key = r.choice(["City", "Country", "State", "Continent", "city", "country"])
            return (
                cat,
                f"<think>x</think><answer>Country: {cc}\n{key}: {name}\nCoordinates: ({lat}, {lon})</answer>",
            )
        # non-string
        k = r.random()
        if k < 0.15:
            x: Any = self.answer()
            for _ in range(r.randrange(1, 5000)):
                x = [x]
            return cat, x
        if k < 0.3:
            return cat, [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": self.answer()}] * r.randrange(0, 4),
                }
            ]
        if k < 0.4:
            return cat, r.choice([None, 0, -1, 3.5, float("nan"), True, 10 ** r.randrange(4300, 5000)])
        if k < 0.5:
            return cat, self.answer().encode("utf-8")[: r.randrange(0, 200)] + bytes([r.randrange(128, 256)])
        if k < 0.6:
            return cat, Unprintable()
        if k < 0.7:
            return cat, HostileStr(self.answer())
        if k < 0.8:
            msg: dict[str, Any] = {"role": "assistant"}
            msg["content"] = [msg]
            return cat, msg
        if k < 0.9:
            return cat, [
                {
                    "role": r.choice(["assistant", "user", None]),
                    "content": r.choice([None, 5, {"a": 1}, [1, 2], Unprintable()]),
                }
            ]
        return cat, {"role": "assistant", "content": self.answer(), "extra": set()}

    def truth(self) -> dict[str, list[Any]]:
        r = self.rng
        city, admin1, cc, lat, lon = self.place()
        row: dict[str, Any] = {
            "lat": lat,
            "lon": lon,
            "country_code": cc,
            "country": None,
            "admin1": admin1,
            "city": city,
            "continent": None,
            "entities": ["church", "tram", "palm trees", "flag"][: r.randrange(0, 5)],
        }
        if r.random() < 0.05:  # a hostile truth value in one column
            col = r.choice(list(row))
            row[col] = r.choice(
                [
                    None,
                    float("nan"),
                    "1e400",
                    10 ** r.randrange(400, 5000),
                    city * 500,
                    Unprintable(),
                    [[[]]],
                    {"text": None},
                    b"\xff",
                    "",
                ]
            )
        return {k: [v] for k, v in row.items()}


def describe(obj: Any, limit: int = 120) -> str:
    try:
        text = reprlib.repr(obj)
    except Exception:
        text = f"<{type(obj).__name__}>"
    return text[:limit]


def size_of(obj: Any) -> int:
    return len(obj) if isinstance(obj, str | bytes) else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after this long and report")
    ap.add_argument("--report-every", type=int, default=50_000)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    funcs: dict[str, Callable[..., Any]] = {}
    for name, proto in PROTOCOLS.items():
        funcs[f"parse:{name}"] = proto.parse
    rewards: dict[str, Callable[..., Any]] = {
        **REWARDS,
        "globe_locatability": make_globe_locatability(KeywordJudge()),
    }
    names = list(funcs) + [f"reward:{n}" for n in rewards]
    gen = Generator(args.seed)

    def run_one(completion: Any, cols: dict[str, list[Any]], times: list[float]) -> list[tuple[str, str]]:
        """Time each call; return (function, problem) for exceptions and bad values."""
        problems = []
        for name, fn in funcs.items():
            t = time.perf_counter()
            try:
                fn(completion)
            except Exception as e:
                problems.append((name, f"raised {type(e).__name__}: {describe(str(e), 200)}"))
            times.append(time.perf_counter() - t)
        for name, reward in rewards.items():
            lo, hi = REWARD_RANGES[name]
            t = time.perf_counter()
            try:
                out = reward([completion], **cols)
            except Exception as e:
                out = None
                problems.append((f"reward:{name}", f"raised {type(e).__name__}: {describe(str(e), 200)}"))
            times.append(time.perf_counter() - t)
            if out is not None:
                if not isinstance(out, list) or len(out) != 1:
                    problems.append((f"reward:{name}", f"out of range: returned {describe(out)}"))
                else:
                    v = out[0]
                    if v is not None and not (isinstance(v, float) and math.isfinite(v) and lo <= v <= hi):
                        problems.append((f"reward:{name}", f"out of range: {v!r}"))
        return problems

    # Warm-up and anchor: a well-formed Geo-R answer through the same calls.
    anchor_c = gen.answer()
    anchor_cols = gen.truth()
    anchor = []
    for _ in range(200):
        t: list[float] = []
        run_one(anchor_c, anchor_cols, t)
        anchor.append(sum(t))
    anchor_s = float(np.median(anchor[50:]))

    n = args.n
    per_fn = np.zeros((n, len(names)), dtype=np.float32)
    cats: list[str] = []
    lengths = np.zeros(n, dtype=np.int64)
    exceptions: Counter[tuple[str, str]] = Counter()
    out_of_range: Counter[str] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    deadline = time.perf_counter() + args.max_minutes * 60 if args.max_minutes else math.inf
    t0 = time.perf_counter()
    done = 0
    for i in range(n):
        cat, completion = gen.completion()
        cols = gen.truth()
        times: list[float] = []
        for name, problem in run_one(completion, cols, times):
            kind = problem.split(":", 1)[0]
            key = (name, problem if kind.startswith("out of range") else problem.split(":", 1)[0])
            if problem.startswith("out of range"):
                out_of_range[name] += 1
            else:
                exceptions[key] += 1
            ex = examples.setdefault(key, [])
            if len(ex) < 3:
                ex.append(f"[{cat}] {describe(completion)} -> {problem}")
        per_fn[i] = times
        cats.append(cat)
        lengths[i] = size_of(completion)
        done = i + 1
        if args.report_every and done % args.report_every == 0:
            el = time.perf_counter() - t0
            print(
                f"  {done:,} completions in {el:,.0f} s ({done / el:,.0f}/s); "
                f"exceptions {sum(exceptions.values())}, out of range {sum(out_of_range.values())}",
                flush=True,
            )
        if time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - t0
    per_fn = per_fn[:done]
    total = per_fn.sum(axis=1, dtype=np.float64)

    print(
        f"fuzz: {done:,} completions (seed {args.seed}) through {len(funcs)} parsers and {len(rewards)} rewards "
        f"in {elapsed:,.0f} s ({done / elapsed:,.0f} completions/s, one core)"
        + ("" if done == n else f"; STOPPED EARLY at --max-minutes {args.max_minutes} of {n:,} asked")
    )
    mix = Counter(cats)
    print("mix: " + ", ".join(f"{c} {mix[c]:,}" for c in CATEGORIES))
    print(f"exceptions: {sum(exceptions.values()):,}")
    for (name, kind), count in exceptions.most_common():
        print(f"    {count:>9,}  {name}  {kind}")
        for e in examples[(name, kind)]:
            print(f"               e.g. {e}")
    print(
        f"out-of-range rewards (outside the declared range, NaN, wrong length): {sum(out_of_range.values()):,}"
    )
    for name, count in out_of_range.most_common():
        print(f"    {count:>9,}  {name}")
    q = np.percentile(total, [50, 99, 99.9]) * 1e3
    print(
        f"time per completion (all parsers + rewards): p50 {q[0]:.2f} ms, p99 {q[1]:.2f} ms, "
        f"p99.9 {q[2]:.2f} ms, max {total.max() * 1e3:.1f} ms"
    )
    print(
        f"anchor (a well-formed Geo-R answer, same calls, median): {anchor_s * 1e3:.2f} ms -> "
        f"p99 = {q[1] / 1e3 / anchor_s:.1f}x anchor, max = {total.max() / anchor_s:.0f}x"
    )
    print("slowest completions:")
    for i in np.argsort(total)[::-1][:5]:
        worst = names[int(np.argmax(per_fn[i]))]
        print(f"    {total[i] * 1e3:8.1f} ms  [{cats[i]}] length {lengths[i]:,}  (most in {worst})")
    print("per function: p99 / max, ms")
    for j, name in enumerate(names):
        col = per_fn[:, j]
        print(f"    {name:<28} {np.percentile(col, 99) * 1e3:7.3f} / {col.max() * 1e3:8.1f}")


if __name__ == "__main__":
    main()
