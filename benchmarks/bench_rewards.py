"""Reward benchmark: the full reward stack over one GRPO batch (256 prompts × 16 generations).

Issue 3, part 4: "the full reward stack over 4,096 completions: target <= 0.5 s on
one core; print time per reward".

The batch (seeded, reproducible): 256 real places drawn from the gazetteer (cities of
>= 100k people, several per country at most), 16 completions each, in the mix a VLM
produces early in GRPO — right place, right country / wrong city, wrong country, a
hedge with two coordinate pairs, a missing level, text after the answer, DMS or
hemisphere coordinates, Markdown, no answer at all, conversational (message-list)
completions. Geo-R rewards read Chain-of-Region completions, GLOBE rewards GLOBE
completions of the same places (a run trains one protocol; each stack is timed on its
own and the two are added for "full").

Each figure is the median of ``--repeats`` runs (default 5) on one core (the process
is pinned to one CPU and BLAS to one thread), in CPU time of the process (on an idle
core equal to wall time; on a shared machine it is the steadier figure), wall time in
brackets. Before every run the parse cache and the
rewards' name caches are cleared, so each run pays for parsing and for name look-ups
as a fresh batch would. Anchors measured in the same run, so ratios travel between
machines: one vectorised ``haversine_km`` over the 4,096 pairs, and parsing alone
(``protocol.parse`` of the 4,096 completions, no cache).

    python benchmarks/bench_rewards.py
    python benchmarks/bench_rewards.py --repeats 9 --prompts 256 --generations 16
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from georeason import geo
from georeason.protocols import get_protocol
from georeason.rewards import REWARDS, KeywordJudge, clear_caches, make_globe_locatability
from georeason.rewards import batch as reward_batch

GEOR_STACK = ["geor", "geor_distance", "geor_format", "hierarchy", "consistency", "geoscore"]
GLOBE_STACK = ["globe_accuracy", "globe_visual", "globe_format", "globe_locatability"]

ENTITY_POOL = [
    "church", "mosque", "temple", "tram", "bus", "road signs", "license plate", "palm trees", "snow",
    "mountains", "red roofs", "brick houses", "street market", "scooters", "tuk-tuk", "minaret",
    "pagoda", "flag", "graffiti", "cobblestones", "skyscrapers", "harbour", "bicycle lane", "desert",
]  # fmt: skip
CLUE_SENTENCES = [
    "The road signs are written in {lang} script.",
    "Cars drive on the {side}; the road markings are {colour}.",
    "I can see {e1} and {e2}, typical of {country}.",
    "The vegetation and the {e1} suggest a {climate} climate.",
    "The architecture, with {e1}, points to {region}.",
]


def _places(n: int, rng: random.Random) -> list[int]:
    g = geo.gazetteer()
    big = np.flatnonzero(g.population >= 100_000)
    rng_np = np.random.default_rng(rng.randrange(2**32))
    picked: list[int] = []
    per_country: dict[str, int] = {}
    for i in rng_np.permutation(big).tolist():
        cc = str(g.country_code[i])
        if per_country.get(cc, 0) >= 4:
            continue
        per_country[cc] = per_country.get(cc, 0) + 1
        picked.append(i)
        if len(picked) == n:
            break
    return picked


def _reasoning(rng: random.Random, country: str, entities: list[str]) -> str:
    e1, e2 = rng.sample(entities, 2) if len(entities) >= 2 else [*entities, "houses", "trees"][:2]
    out = []
    for s in rng.sample(CLUE_SENTENCES, rng.randint(2, 4)):
        out.append(
            s.format(
                lang=rng.choice(["Latin", "Cyrillic", "Arabic", "Thai", "Hangul"]),
                side=rng.choice(["left", "right"]),
                colour=rng.choice(["white", "yellow"]),
                e1=e1,
                e2=e2,
                country=country,
                climate=rng.choice(["temperate", "tropical", "arid", "continental"]),
                region=rng.choice(["southern Europe", "East Asia", "Latin America", "the Middle East"]),
            )
        )
    return " ".join(out)


def _dms(x: float, pos: str, neg: str) -> str:
    h = pos if x >= 0 else neg
    x = abs(x)
    d = int(x)
    m = int((x - d) * 60)
    s = (x - d - m / 60) * 3600
    return f"{d}°{m}'{s:.1f}\"{h}"


def make_batch(
    prompts: int, generations: int, seed: int
) -> tuple[list[Any], list[Any], dict[str, list[Any]]]:
    """(Geo-R completions, GLOBE completions, columns) for ``prompts × generations`` rows."""
    rng = random.Random(seed)
    g = geo.gazetteer()
    truth = _places(prompts, rng)
    pool = _places(2000, random.Random(seed + 1))
    geor_out: list[Any] = []
    globe_out: list[Any] = []
    cols: dict[str, list[Any]] = {
        k: [] for k in ("lat", "lon", "country_code", "country", "admin1", "city", "continent", "entities")
    }
    for t in truth:
        cc = str(g.country_code[t])
        ents = rng.sample(ENTITY_POOL, rng.randint(2, 6))
        same_country = [i for i in pool if g.country_code[i] == cc and i != t] or [t]
        for _ in range(generations):
            kind = rng.choices(
                ["right", "country", "wrong", "hedge", "missing", "after", "dms", "markdown", "none", "chat"],
                weights=[25, 20, 20, 6, 6, 5, 5, 5, 4, 4],
            )[0]
            j = {"right": t, "country": rng.choice(same_country), "wrong": rng.choice(pool)}.get(kind, t)
            if kind in ("hedge", "missing", "after", "dms", "markdown", "chat"):
                j = rng.choice([t, rng.choice(same_country), rng.choice(pool)])
            pcc = str(g.country_code[j])
            country = (
                rng.choice([geo.country_name(pcc), pcc]) if rng.random() < 0.2 else geo.country_name(pcc)
            )
            lat = float(g.lat[j]) + rng.gauss(0, 0.2)
            lon = float(g.lon[j]) + rng.gauss(0, 0.2)
            lat, lon = max(-90.0, min(90.0, lat)), ((lon + 180.0) % 360.0) - 180.0
            think = _reasoning(rng, country, ents if rng.random() < 0.7 else rng.sample(ENTITY_POOL, 3))
            state, city = str(g.admin1[j]) or "N/A", str(g.name[j])
            coords = f"({lat:.4f}, {lon:.4f})"
            if kind == "dms":
                coords = f"{_dms(lat, 'N', 'S')}, {_dms(lon, 'E', 'W')}"
            if kind == "hedge":
                k = rng.choice(pool)
                coords = f"({lat:.4f}, {lon:.4f}) or possibly ({g.lat[k]:.4f}, {g.lon[k]:.4f})"
            lines = [f"Country: {country}", f"State: {state}", f"City: {city}", f"Coordinates: {coords}"]
            if kind == "missing":
                lines.pop(rng.randrange(3))
            if kind == "markdown":
                lines = [f"**{ln.split(': ')[0]}:** {ln.split(': ', 1)[1]}" for ln in lines]
            tail = "\nLet me know if you need more details!" if kind == "after" else ""
            if kind == "none":
                geor_c: Any = (
                    f"<think>{think} It is hard to be sure.</think>\nI cannot determine the location"
                )
                globe_c: Any = geor_c
            else:
                answer = "\n".join(lines)
                geor_c = f"<think>{think}</think>\n<answer>{answer}</answer>{tail}"
                globe_c = f"<think>{think}</think><answer>country: {country}\ncity: {city}</answer>{tail}"
            if kind == "chat":
                geor_c = [{"role": "assistant", "content": geor_c}]
                globe_c = [{"role": "assistant", "content": [{"type": "text", "text": globe_c}]}]
            geor_out.append(geor_c)
            globe_out.append(globe_c)
            cols["lat"].append(float(g.lat[t]))
            cols["lon"].append(float(g.lon[t]))
            cols["country_code"].append(cc)
            cols["country"].append(geo.country_name(cc))
            cols["admin1"].append(str(g.admin1[t]) or None)
            cols["city"].append(str(g.name[t]))
            cols["continent"].append(geo.continent_of(cc))
            cols["entities"].append(ents)
    return geor_out, globe_out, cols


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) for one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def median_time(
    fn: Callable[[], Any], repeats: int, *, before: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median (CPU, wall) seconds over ``repeats`` calls, ``before`` run untimed before each."""
    cpu, wall = [], []
    for _ in range(repeats):
        if before is not None:
            before()
        c, w = timed(fn)
        cpu.append(c)
        wall.append(w)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--generations", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    geor_c, globe_c, cols = make_batch(args.prompts, args.generations, args.seed)
    n = len(geor_c)
    funcs = {**REWARDS, "globe_locatability": make_globe_locatability(KeywordJudge())}
    completions = {name: (globe_c if name in GLOBE_STACK else geor_c) for name in GEOR_STACK + GLOBE_STACK}
    protocol = {name: ("globe" if name in GLOBE_STACK else "geor") for name in completions}

    # Warm-up: gazetteer and polygon indexes load once per process, not per batch.
    geo.reverse_geocode_batch(np.asarray(cols["lat"]), np.asarray(cols["lon"]))
    for name in GEOR_STACK + GLOBE_STACK:
        funcs[name](completions[name][:64], **{k: v[:64] for k, v in cols.items()})

    lat = np.asarray(cols["lat"])
    lon = np.asarray(cols["lon"])
    plat, plon = np.roll(lat, 1), np.roll(lon, 1)
    hav_cpu, _ = median_time(lambda: geo.haversine_km(plat, plon, lat, lon), max(args.repeats, 25))

    print(
        f"reward benchmark: {n} completions ({args.prompts} prompts x {args.generations}), median of "
        f"{args.repeats} runs, pinned to one core; CPU time of the process (wall time in brackets)"
    )
    print(f"anchor: haversine_km over {n} pairs = {hav_cpu * 1e3:.3f} ms")
    print()
    print(f"{'reward':20s} {'own ms':>14s} {'x haversine':>12s} {'with parse ms':>16s}   mean   None")
    results: dict[str, dict[str, float]] = {}
    for stack_name, stack in (("Geo-R", GEOR_STACK), ("GLOBE", GLOBE_STACK)):
        proto = protocol[stack[0]]
        comps = completions[stack[0]]
        for name in stack:
            f = funcs[name]

            def warm_parse(comps: list[Any] = comps, proto: str = proto) -> None:
                clear_caches()
                reward_batch.parse_completions(comps, proto)

            own = median_time(lambda f=f, comps=comps: f(comps, **cols), args.repeats, before=warm_parse)
            cold = median_time(lambda f=f, comps=comps: f(comps, **cols), args.repeats, before=clear_caches)
            out = f(comps, **cols)
            vals = [x for x in out if x is not None]
            print(
                f"{name:20s} {own[0] * 1e3:6.1f} ({own[1] * 1e3:5.1f}) {own[0] / hav_cpu:12.0f} "
                f"{cold[0] * 1e3:7.1f} ({cold[1] * 1e3:6.1f})   {np.mean(vals):.3f} {len(out) - len(vals):5d}"
            )

        # The stack and its parsing anchor, measured in alternation so that load on a shared
        # machine hits both alike; the ratio is the median of the paired ratios.
        def run_stack(stack: list[str] = stack, comps: list[Any] = comps) -> None:
            for name in stack:
                funcs[name](comps, **cols)

        def parse_only(comps: list[Any] = comps, proto: str = proto) -> None:
            p = get_protocol(proto)
            for c in comps:
                p.parse(c)

        pairs = []
        for _ in range(args.repeats):
            clear_caches()
            parse_t = timed(parse_only)
            clear_caches()
            stack_t = timed(run_stack)
            pairs.append((stack_t, parse_t))
        total = statistics.median(t[0][0] for t in pairs), statistics.median(t[0][1] for t in pairs)
        parse = statistics.median(t[1][0] for t in pairs), statistics.median(t[1][1] for t in pairs)
        ratio = statistics.median(t[0][0] / t[1][0] for t in pairs)
        results[stack_name] = {"total": total[0], "parse": parse[0]}
        print(
            f"  {stack_name} stack ({len(stack)} rewards, parsing included): {total[0] * 1e3:.1f} ms "
            f"({total[1] * 1e3:.1f}) = {ratio:.2f}x parsing alone ({parse[0] * 1e3:.1f} ms, "
            f"{parse[0] / n * 1e6:.0f} us/completion) = {total[0] / hav_cpu:.0f}x haversine; "
            f"target <= 500 ms: {'met' if total[0] <= 0.5 else 'NOT met'}"
        )
        print()
    full = sum(r["total"] for r in results.values())
    print(
        f"both stacks ({len(GEOR_STACK) + len(GLOBE_STACK)} rewards, two protocols, each batch parsed "
        f"by both): {full * 1e3:.1f} ms, of which parsing {sum(r['parse'] for r in results.values()) * 1e3:.1f} ms"
    )
    print("own ms: the reward on a batch already parsed, name caches cleared (its own cost per fresh batch);")
    print("with parse ms: the reward alone on a fresh batch (parse + names from scratch).")


if __name__ == "__main__":
    main()
