"""Hostile input (issue 13): long names, non-string completions, reward names, bad bytes
and broken tables, failing judges, escaping archives. Each test reproduces what broke."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from georeason.geo.gazetteer import forward_geocode, gazetteer, names_match
from georeason.rewards import globe_accuracy, hierarchy

# ---------------------------------------------------------------------------
# 4. long names: a lookup costs O(log n) and copies nothing, whatever the name
# ---------------------------------------------------------------------------


def _cost(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MB traced) of one call."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    return out, seconds, peak


@pytest.fixture(scope="module", autouse=False)
def warm_gazetteer() -> None:
    gazetteer()
    forward_geocode("Paris", country="France")  # fills the small caches outside the measured calls


# A generous time bound: the broken lookups took 0.7 to 11 s (and up to 8.5 GB).
SLOW = 2.0


@pytest.mark.usefixtures("warm_gazetteer")
@pytest.mark.parametrize(
    "what",
    ["globe_accuracy true city", "hierarchy completion city", "forward_geocode city"],
)
def test_long_names_are_cheap(what: str) -> None:
    if what == "globe_accuracy true city":
        done = "<think>x</think><answer>country: France\ncity: Paris</answer>"
        out, seconds, peak = _cost(lambda: globe_accuracy([done], country=["France"], city=["Paris" * 600]))
        assert out == [pytest.approx(0.2)]
    elif what == "hierarchy completion city":
        done = f"<answer>Country: France\nCity: {'Lyon' * 49}abc\nCoordinates: (48.85, 2.35)</answer>"
        out, seconds, peak = _cost(lambda: hierarchy([done], country=["France"], city=["Paris"]))
        assert out[0] is not None and 0.0 <= out[0] < 1.0
    else:
        out, seconds, peak = _cost(lambda: forward_geocode(city="a" * 1000))
        assert out is None
    assert peak < 50, f"{what}: {peak:.0f} MB traced"
    assert seconds < SLOW, f"{what}: {seconds:.2f} s"


@pytest.mark.usefixtures("warm_gazetteer")
def test_name_longer_than_any_gazetteer_name_is_rejected_at_once() -> None:
    g = gazetteer()
    longest = max(g.city_index.keys, key=len)
    assert g.city_index.max_key_len == len(longest)
    assert len(g.city_index.get(longest))  # the longest name itself is still found
    assert not len(g.city_index.get(longest + "x"))
    assert g.admin1_index.with_suffix("|" + "x" * (g.admin1_index.max_key_len + 1)) == []


@pytest.mark.usefixtures("warm_gazetteer")
@pytest.mark.parametrize("qualifier", [", IN", ", France", ", Georgia"])
def test_many_comma_qualifiers_do_not_explode(qualifier: str) -> None:
    # Each qualifier after a comma has up to three readings (US state, country, admin1) and
    # was read recursively: twenty of them were 3**20 lookups (minutes for one name).
    name = "Zzqx" + qualifier * 20
    out, seconds, _ = _cost(lambda: forward_geocode(city=name))
    assert out is None
    assert seconds < SLOW
    done = f"<answer>Country: France\nCity: {name}\nCoordinates: (48.85, 2.35)</answer>"
    out, seconds, _ = _cost(lambda: hierarchy([done], country=["France"], city=[name]))
    assert seconds < SLOW
    assert not names_match(name, "Paris")


@pytest.mark.usefixtures("warm_gazetteer")
def test_qualified_names_still_read() -> None:
    assert forward_geocode("Springfield, Illinois, USA").admin1 == "Illinois"  # type: ignore[union-attr]
    assert forward_geocode("Paris, France").country_code == "FR"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# 5. AnswerProtocol.parse never raises, whatever the object
# ---------------------------------------------------------------------------


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class _HostileStr(str):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def strip(self, *args: Any) -> str:
        raise RuntimeError("no strip")

    def split(self, *args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("no split")


def _deep(depth: int) -> list[Any]:
    x: list[Any] = []
    for _ in range(depth):
        x = [x]
    return x


def _self_referential() -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant"}
    msg["content"] = [msg]
    return msg


def hostile_objects() -> dict[str, Any]:
    """Completions (or column values) that are not what TRL hands over, built fresh."""
    return {
        "5,000-deep list": _deep(5000),
        "repr raises": _NoRepr(),
        "str subclass with raising methods": _HostileStr(
            "<answer>Country: France\nCity: Paris\nCoordinates: (48.85, 2.35)</answer>"
        ),
        "self-referential message": _self_referential(),
        "int past the digit limit": 10**5000,
        "generator": (c for c in "<answer>"),
        "message whose content raises": [{"role": "assistant", "content": _NoRepr()}],
        "invalid UTF-8 bytes": b"\xff\xfe<answer>",
        "nan": float("nan"),
    }


@pytest.mark.parametrize("what", sorted(hostile_objects()))
def test_parse_never_raises_on_hostile_objects(what: str) -> None:
    from georeason.protocols import PROTOCOLS
    from georeason.types import Prediction

    completion = hostile_objects()[what]
    for proto in PROTOCOLS.values():
        pred = proto.parse(completion)
        assert isinstance(pred, Prediction) and isinstance(pred.raw, str) and len(pred.raw) <= 20_000
        if what == "str subclass with raising methods":
            assert not any(e.startswith("parser error") for e in pred.errors)  # read as the text it holds
            assert pred.lat == 48.85 or proto.name == "globe"
            assert type(pred.raw) is str
        elif what not in ("invalid UTF-8 bytes", "generator"):
            assert not pred.format_ok and pred.errors


def _all_rewards() -> dict[str, Callable[..., list[float | None]]]:
    from georeason.rewards import REWARDS, KeywordJudge, make_globe_locatability

    return {**REWARDS, "globe_locatability": make_globe_locatability(KeywordJudge())}


@pytest.mark.parametrize("what", sorted(hostile_objects()))
def test_rewards_never_raise_on_hostile_completions_and_columns(what: str) -> None:
    import math

    from georeason.rewards import REWARD_RANGES

    good = "<think>a church</think><answer>Country: France\ncity: Paris\nCoordinates: (48.85, 2.35)</answer>"
    clean = {
        "lat": [48.85],
        "lon": [2.35],
        "country": ["France"],
        "city": ["Paris"],
        "entities": [["church"]],
    }
    for name, func in _all_rewards().items():
        lo, hi = REWARD_RANGES.get(name, (0.0, 1.0))
        # the hostile object as the completion, then as every truth column's value
        outs = [func([hostile_objects()[what]], **clean)]
        hostile_cols = {
            k: [hostile_objects()[what]] for k in ("lat", "lon", "country", "country_code", "city")
        }
        hostile_cols |= {"admin1": [hostile_objects()[what]], "continent": [hostile_objects()[what]]}
        outs.append(func([good], **hostile_cols, entities=[["church"]]))
        outs.append(func([good], **clean | {"entities": [hostile_objects()[what]]}))
        for out in outs:
            assert len(out) == 1
            assert out[0] is None or (math.isfinite(out[0]) and lo <= out[0] <= hi), (name, out)


# ---------------------------------------------------------------------------
# 6. every registered reward takes name=..., as load_rewards' advice says
# ---------------------------------------------------------------------------


def test_every_registered_reward_takes_a_name() -> None:
    from georeason.rewards import FACTORIES, REWARDS, get_reward

    for reward in sorted(set(REWARDS) | set(FACTORIES)):
        extra = {"judge": "keyword"} if reward == "globe_locatability" else {}
        func = get_reward(reward, name=f"{reward}_2", **extra)
        assert func.__name__ == f"{reward}_2", reward
        assert func is not REWARDS.get(reward)
        done = "<think>a sign</think><answer>country: France\ncity: Paris</answer>"
        out = func([done], lat=[48.85], lon=[2.35], entities=[["sign"]])
        assert len(out) == 1


def test_load_rewards_duplicate_advice_can_be_followed() -> None:
    from georeason.rewards import load_rewards

    with pytest.raises(ValueError, match="another name in its options") as info:
        load_rewards(["geoscore", "geoscore:0.5"])
    assert "geoscore" in str(info.value)
    funcs, weights = load_rewards(
        ["geoscore", "georeason.rewards.ours:make_geoscore:0.5"],
        {"georeason.rewards.ours:make_geoscore": {"name": "geoscore_globe", "protocol": "globe"}},
    )
    assert [f.__name__ for f in funcs] == ["geoscore", "geoscore_globe"] and weights == [1.0, 0.5]
