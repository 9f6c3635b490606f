"""GLOBE's MP16-Reason builder: distil reasoning from several teacher VLMs, keep what they agree on.

:func:`run_distill` asks every teacher (``hf`` or ``openai``, run concurrently) for
GLOBE's answer (reasoning, then ``country`` / ``city``, placed on the map by
:mod:`georeason.match`) and for its locatability judgement (``P(yes)`` from
log-probabilities; a teacher without them has no judgement, never a silent 0).
A sample is kept when ``min_agree`` teachers (default: all) name the same place and
are right (the country, and with ``truth_level="city"`` the city by name or within
``max_km``); every dropped sample gets one reason. The agreeing teacher closest to
the truth gives the ``reasoning``, and :func:`extract_entities` takes from it the
visual entities GLOBE's ``R_vis`` checks. Output: ``records.jsonl`` (one line per
image as it completes; a rerun resumes, and recomputes the decisions from the stored
teacher outputs), ``dataset/`` (what ``georeason train`` reads) and ``summary.json``.

The specification — each step, the drop reasons in order, the defaults and why, the
entity extractor, the output columns — is docs/distill.md.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from georeason.runs import (
    Progress,
    RunDir,
    RunMismatchError,
    batched,
    read_ahead,
    read_records,
    write_json,
)
from georeason.types import PLACE_LEVELS

logger = logging.getLogger("georeason.pipelines")

RECORDS_FILE = "records.jsonl"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
DATASET_DIR = "dataset"
LOCK_FILE = ".distill.lock"
TEACHER_KINDS = ("hf", "openai")
AGREE_LEVELS = ("country", "city")
TRUTH_LEVELS = ("country", "city", "none")
#: drop reasons, in the order they are checked
DROP_REASONS = (
    "image unreadable",
    "teachers failed",
    "no usable answer",
    "no locatability judgement",
    "not locatable",
    "teachers disagree",
    "wrong country",
    "wrong city",
    "no reasoning",
)
_TRUTH_KEYS = PLACE_LEVELS
_OUTPUT_COLUMNS = (
    "continent",
    "country_code",
    "country",
    "admin1",
    "city",
    "locatable",
    "locatability",
    "reasoning",
    "entities",
    "teacher",
    "agreement",
    "teacher_outputs",
)


class DistillError(ValueError):
    """The distillation cannot run as asked (bad teacher spec, input, settings)."""


# ---------------------------------------------------------------------------
# teachers
# ---------------------------------------------------------------------------

_NAME_PREFIX = re.compile(r"^([A-Za-z0-9_.\-]+)=(?=(?:hf|openai):)")
_OPENAI_URL = re.compile(r"^(https?://[^/:\s]+(?::\d+)?(?:/[^:\s]*)?)(?::(.+))?$")


@dataclass
class TeacherSpec:
    """One teacher: a backend kind, a model and (openai) the server's API root."""

    name: str
    kind: str
    model: str
    base_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "model": self.model, "base_url": self.base_url}


def parse_teacher(spec: str, index: int = 0) -> TeacherSpec:
    """Read ``[NAME=]hf:PATH`` or ``[NAME=]openai:URL[:MODEL]``.

    ``URL`` is the API root (``http://host:port/v1``); ``MODEL`` the served model
    name (default: the first of the server's ``/models``). ``NAME`` labels the
    teacher in the outputs (default ``t<index>``).

    >>> t = parse_teacher("openai:http://127.0.0.1:8001/v1:Qwen/Qwen2.5-VL-72B", 1)
    >>> t.name, t.kind, t.base_url, t.model
    ('t1', 'openai', 'http://127.0.0.1:8001/v1', 'Qwen/Qwen2.5-VL-72B')
    >>> t = parse_teacher("big=hf:/models/internvl3")
    >>> t.name, t.kind, t.model
    ('big', 'hf', '/models/internvl3')
    """
    text = spec.strip()
    name = f"t{index}"
    m = _NAME_PREFIX.match(text)
    if m:
        name, text = m.group(1), text[m.end() :]
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in TEACHER_KINDS or not rest.strip():
        raise DistillError(
            f"bad teacher {spec!r}: use hf:PATH or openai:URL[:MODEL] "
            "(e.g. openai:http://127.0.0.1:8001/v1:qwen2.5-vl), optionally NAME= in front"
        )
    if kind == "hf":
        return TeacherSpec(name=name, kind="hf", model=rest.strip())
    u = _OPENAI_URL.match(rest.strip())
    if not u:
        raise DistillError(f"bad teacher {spec!r}: the openai URL must start with http:// or https://")
    return TeacherSpec(name=name, kind="openai", model=u.group(2) or "auto", base_url=u.group(1).rstrip("/"))


# ---------------------------------------------------------------------------
# entities
# ---------------------------------------------------------------------------

#: head nouns of visual clues (singular and plural); a phrase ending in one is an entity
CLUE_LEXICON: frozenset[str] = frozenset(
    """
    sign signs signage signboard signboards billboard billboards banner banners flag flags plate plates
    script scripts lettering writing inscription inscriptions text characters alphabet poster posters logo
    logos brand brands advertisement advertisements storefront storefronts shopfront awning awnings
    building buildings house houses roof roofs rooftop rooftops tower towers church churches cathedral
    cathedrals mosque mosques minaret minarets temple temples pagoda pagodas shrine shrines stupa castle
    castles palace palaces bridge bridges dome domes spire spires steeple facade facades balcony balconies
    arch arches archway colonnade columns wall walls gate gates skyscraper skyscrapers skyline lighthouse
    windmill windmills monument monuments statue statues landmark landmarks ruins fort fortress stadium
    station apartment apartments villa villas cottage cottages chalet chalets hut huts architecture tiles
    brickwork stonework shutters chimney chimneys fountain square plaza harbor harbour port pier marina
    car cars bus buses tram trams train trains taxi taxis truck trucks motorcycle motorcycles scooter
    scooters bicycle bicycles rickshaw tuk-tuk boat boats ferry ferries ship ships vehicle vehicles
    road roads street streets highway motorway lane lanes marking markings bollard bollards pole poles
    sidewalk pavement crosswalk guardrail guardrails curb kerb traffic railway tracks
    mountain mountains hill hills valley valleys river rivers lake lakes sea ocean beach beaches coast
    coastline shore cliff cliffs island islands desert deserts dune dunes forest forests jungle rainforest
    palm palms tree trees vegetation grass grassland meadow meadows field fields farmland crops paddy
    paddies terraces vineyard vineyards snow glacier glaciers volcano canyon waterfall soil sand rock
    rocks savanna savannah steppe tundra prairie outback bush scrub cactus cacti fjord
    market markets stall stalls clothing costume costumes uniform uniforms lantern lanterns umbrella
    umbrellas tint colour color
    """.split()  # noqa: SIM905  (a word list reads better as text)
)
# Words that never start or sit inside an entity phrase (function words, vague adjectives, verbs).
_STOP = frozenset(
    """
    a an the this that these those there here it its it's they them their his her our your my we i you
    of in on at to from by with without for and or but nor as is are was were be been being has have had
    do does did can could would should may might must will shall not no yes very quite rather also some
    any many much more most several few various other another such same each every both either neither
    which who whom whose what where when why how than then so if because while although though into onto
    over under above below behind near next between among along across around through visible typical
    distinctive possible likely clear prominent common characteristic suggest suggests suggesting
    indicate indicates indicating show shows showing see seen appear appears appearing look looks
    looking like just only even still image photo picture scene background foreground
    """.split()  # noqa: SIM905
)
_CONNECTORS = frozenset(
    {"of", "de", "la", "le", "del", "di", "da", "du", "des", "van", "von", "the", "al", "el"}
)
_MAX_MODIFIERS = 3
_TOKEN = re.compile(r"[^\W\d_](?:[\w'’\-]*\w)?|[.!?;:,()\[\]\"“”]|\n", re.UNICODE)
_BREAK = frozenset('.!?;:,()[]"“”\n')
_SENTENCE_END = frozenset(".!?:\n")


def _is_place_name(phrase: str) -> bool:
    """A country, continent, admin1 or city name of the gazetteer (a conclusion, not a clue)."""
    from georeason.geo import normalize_country
    from georeason.geo.gazetteer import city_candidates
    from georeason.types import CONTINENT_NAMES

    if normalize_country(phrase) is not None:
        return True
    if phrase.lower() in {c.lower() for c in CONTINENT_NAMES.values()}:
        return True
    if len(city_candidates(phrase)):
        return True
    return _is_admin1(phrase)


@lru_cache(maxsize=4096)
def _is_admin1(phrase: str) -> bool:
    from georeason.geo import admin1_key, gazetteer

    key = admin1_key(phrase)
    return bool(key) and bool(gazetteer().admin1_index.with_suffix(f"|{key}"))


def extract_entities(text: str, max_entities: int = 12) -> list[str]:
    """Visual entity phrases named in a reasoning text, in order of first mention.

    1. *Clue phrases*: a run of words ending in a :data:`CLUE_LEXICON` noun
       (adjacent lexicon nouns join: "road tint", "palm trees"), extended to the
       left by up to three modifier words that are not function words or vague
       adjectives (:data:`_STOP`), stopping at punctuation: "vertical
       blue-white-red banner", "Cyrillic script", "red-brick church".
    2. *Names*: runs of capitalised words (with "of", "de", ... inside), not at
       the start of a sentence when a single word, that are not gazetteer place
       names and not already inside a clue phrase: "Eiffel Tower", "Coca-Cola".

    Duplicates (case-insensitive) are dropped; at most ``max_entities`` are kept.

    >>> extract_entities("Green meadow: Europe. The vertical blue-white-red banner points to France, "
    ...                  "and a red circle sign. I also see the Eiffel Tower and palm trees.")
    ['Green meadow', 'vertical blue-white-red banner', 'red circle sign', 'Eiffel Tower', 'palm trees']
    """
    tokens = [m.group(0) for m in _TOKEN.finditer(text or "")]
    out: list[str] = []
    seen: set[str] = set()
    covered: set[int] = set()

    def add(words: list[str], span: range) -> None:
        phrase = " ".join(words)
        key = phrase.casefold()
        if phrase and key not in seen:
            seen.add(key)
            out.append(phrase)
        covered.update(span)

    # 1. clue phrases
    i = 0
    while i < len(tokens):
        if tokens[i].casefold() not in CLUE_LEXICON:
            i += 1
            continue
        end = i
        while end + 1 < len(tokens) and tokens[end + 1].casefold() in CLUE_LEXICON:
            end += 1
        start = i
        while (
            start > 0
            and i - start < _MAX_MODIFIERS
            and tokens[start - 1] not in _BREAK
            and tokens[start - 1].casefold() not in _STOP
        ):
            start -= 1
        add(tokens[start : end + 1], range(start, end + 1))
        i = end + 1

    # 2. capitalised names
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _BREAK or not tok[0].isupper() or i in covered:
            i += 1
            continue
        sentence_start = i == 0 or tokens[i - 1] in _SENTENCE_END
        j = i
        while j + 1 < len(tokens):
            nxt = tokens[j + 1]
            if nxt[0].isupper() and nxt not in _BREAK and (j + 1) not in covered:
                j += 1
            elif (
                nxt.casefold() in _CONNECTORS
                and j + 2 < len(tokens)
                and tokens[j + 2][0].isupper()
                and tokens[j + 2] not in _BREAK
            ):
                j += 2
            else:
                break
        words = tokens[i : j + 1]
        while words and words[0].casefold() in _STOP:  # "The Eiffel Tower" -> "Eiffel Tower"
            words = words[1:]
        single_initial = len(tokens[i : j + 1]) == 1 and sentence_start
        lone_stop = len(words) == 1 and words[0].casefold() in _STOP
        if words and not single_initial and not lone_stop and not _is_place_name(" ".join(words)):
            add(words, range(i, j + 1))
        i = j + 1
    return out[:max_entities]


# ---------------------------------------------------------------------------
# per-teacher outputs and the decision
# ---------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def teacher_output(
    spec: TeacherSpec,
    completion: str | None,
    error: str | None,
    seconds: float | None,
    p_yes: float | None,
    judge_error: str | None,
    truth: Mapping[str, Any],
) -> dict[str, Any]:
    """The stored output of one teacher on one image: raw text, parse, place, distance, P(yes)."""
    from georeason.geo import haversine_km
    from georeason.match import place_by_names
    from georeason.protocols import get_protocol

    out: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "model": spec.model,
        "completion": completion,
        "error": error,
        "seconds": _num(seconds),
        "p_yes": _num(p_yes),
        "judge_error": judge_error,
        "format_ok": None,
        "parse_errors": [],
        "country": None,
        "country_code": None,
        "admin1": None,
        "city": None,
        "reasoning": None,
        "pred_lat": None,
        "pred_lon": None,
        "geocode_level": None,
        "distance_km": None,
        "entities": [],
    }
    if completion is None:
        return out
    pred = get_protocol("globe").parse(completion)
    out.update(
        format_ok=bool(pred.format_ok),
        parse_errors=list(pred.errors),
        country=pred.country or None,
        country_code=pred.country_code or None,
        admin1=pred.admin1 or None,
        city=pred.city or None,
        reasoning=(pred.reasoning or "").strip() or None,
    )
    # GLOBE answers name places: place the names (a stray coordinate pair is not the answer).
    hit = place_by_names(pred)
    if hit is not None:
        lat, lon = hit.lat, hit.lon
        out.update(pred_lat=float(lat), pred_lon=float(lon), geocode_level=hit.level)
        if _num(truth.get("lat")) is not None and _num(truth.get("lon")) is not None:
            out["distance_km"] = _num(haversine_km(float(truth["lat"]), float(truth["lon"]), lat, lon))
    out["entities"] = extract_entities(out["reasoning"] or "")
    return out


@dataclass
class FilterConfig:
    """Which samples are kept (see the module docstring); changeable on a rerun."""

    min_agree: int | None = None  # None: all teachers
    agree_on: str = "country"
    truth_level: str = "city"
    max_km: float = 25.0
    min_locatability: float | None = None
    locatable_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.min_agree is not None and self.min_agree < 1:
            raise DistillError(f"min_agree must be >= 1, got {self.min_agree}")
        if self.agree_on not in AGREE_LEVELS:
            raise DistillError(f"agree_on must be one of {AGREE_LEVELS}, got {self.agree_on!r}")
        if self.truth_level not in TRUTH_LEVELS:
            raise DistillError(f"truth_level must be one of {TRUTH_LEVELS}, got {self.truth_level!r}")
        if not (math.isfinite(self.max_km) and self.max_km >= 0):
            raise DistillError(f"max_km must be >= 0, got {self.max_km}")
        if self.min_locatability is not None and not 0 <= self.min_locatability <= 1:
            raise DistillError(f"min_locatability must be in [0, 1], got {self.min_locatability}")

    def needed(self, n_teachers: int) -> int:
        m = n_teachers if self.min_agree is None else self.min_agree
        if m > n_teachers:
            raise DistillError(f"min_agree={m} but only {n_teachers} teachers")
        return m


@dataclass
class Decision:
    kept: bool
    reason: str | None  # one of DROP_REASONS when dropped
    chosen: int | None = None  # index of the teacher whose reasoning is kept
    group: list[int] = field(default_factory=list)  # teachers that agree (and are right)
    locatability: float | None = None
    locatable: bool | None = None


def _country_key(t: Mapping[str, Any]) -> str | None:
    from georeason.geo import normalize_name

    if t.get("country_code"):
        return str(t["country_code"])
    if t.get("country"):
        return "name:" + normalize_name(str(t["country"]))
    return None


def _clusters(members: Sequence[int], outs: Sequence[Mapping[str, Any]], agree_on: str) -> list[list[int]]:
    """Teachers grouped by the country (and city) they name, largest first (ties: teacher order)."""
    from georeason.geo import names_match

    clusters: list[tuple[str, str | None, list[int]]] = []
    for i in members:
        key = _country_key(outs[i])
        if key is None:
            continue
        city = outs[i].get("city")
        if agree_on == "city" and not city:
            continue
        for ckey, ccity, group in clusters:
            if ckey != key:
                continue
            code = key if not key.startswith("name:") else None
            if agree_on == "country" or names_match(city, ccity, level="city", country_code=code):
                group.append(i)
                break
        else:
            clusters.append((key, city, [i]))
    groups = [g for _, _, g in clusters]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _right(t: Mapping[str, Any], truth: Mapping[str, Any], level: str, max_km: float) -> tuple[bool, bool]:
    """(country right, city right) of one teacher's answer against the truth.

    :func:`georeason.match.judge` decides (the rule of the metrics and rewards); a city
    whose geocoded place lies within ``max_km`` of the truth also counts (a teacher naming
    the suburb or town next to the gazetteer's nearest place).
    """
    from georeason.match import Truth, judge

    def text(key: str, src: Mapping[str, Any]) -> str | None:
        v = src.get(key)
        return str(v).strip() or None if v is not None else None

    want = Truth(*(text(k, truth) for k in PLACE_LEVELS))
    answer = Truth(None, text("country_code", t), text("country", t), None, text("city", t))
    if not want.has_country or not answer.has_country:
        return False, False
    verdict = judge(answer, want, ("country", "city"))
    if not verdict["country"] or level != "city":
        return bool(verdict["country"]), False
    d = _num(t.get("distance_km"))
    near = d is not None and d <= max_km and str(t.get("geocode_level") or "").startswith("city")
    return True, bool(near or verdict["city"])


def decide(record: Mapping[str, Any], config: FilterConfig) -> Decision:
    """Keep or drop one image from its stored teacher outputs (pure; reruns recompute it)."""
    outs: list[Mapping[str, Any]] = record.get("teachers") or []
    p = [_num(t.get("p_yes")) for t in outs]
    judged = [x for x in p if x is not None]
    loc = float(np.mean(judged)) if judged else None
    dec = Decision(kept=False, reason=None, locatability=loc)
    dec.locatable = None if loc is None else bool(loc >= config.locatable_threshold)
    if record.get("image_error"):
        dec.reason = "image unreadable"
        return dec
    m = config.needed(len(outs))
    answered = [i for i, t in enumerate(outs) if t.get("completion") is not None]
    if len(answered) < m:
        dec.reason = "teachers failed"
        return dec
    usable = [
        i for i in answered if _country_key(outs[i]) and (config.agree_on == "country" or outs[i].get("city"))
    ]
    if len(usable) < m:
        dec.reason = "no usable answer"
        return dec
    if config.min_locatability is not None:
        if loc is None:
            dec.reason = "no locatability judgement"
            return dec
        if loc < config.min_locatability:
            dec.reason = "not locatable"
            return dec
    agreeing = _clusters(answered, outs, config.agree_on)
    if not agreeing or len(agreeing[0]) < m:
        dec.reason = "teachers disagree"
        return dec
    truth = record.get("truth") or {}
    if config.truth_level == "none":
        group = agreeing[0]
    else:
        rights = {i: _right(outs[i], truth, config.truth_level, config.max_km) for i in answered}
        ok_country = [i for i in answered if rights[i][0]]
        ok = ok_country if config.truth_level == "country" else [i for i in ok_country if rights[i][1]]
        right_groups = _clusters(ok, outs, config.agree_on)
        if not right_groups or len(right_groups[0]) < m:
            country_groups = _clusters(ok_country, outs, "country")
            has_country = bool(country_groups) and len(country_groups[0]) >= m
            dec.reason = "wrong city" if config.truth_level == "city" and has_country else "wrong country"
            return dec
        group = right_groups[0]
    dec.group = list(group)
    with_text = [i for i in group if outs[i].get("reasoning")]
    if not with_text:
        dec.reason = "no reasoning"
        return dec

    def closeness(i: int) -> tuple[float, int]:
        d = _num(outs[i].get("distance_km"))
        return (d if d is not None else math.inf, i)

    dec.chosen = min(with_text, key=closeness)
    dec.kept = True
    return dec


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------


@dataclass
class DistillInput:
    """The images to distil: a ``datasets`` Dataset with resolved column names and truth labels."""

    dataset: Any
    root: Path
    id_col: str | None
    image_col: str
    lat_col: str
    lon_col: str
    ids: list[str]
    truth: list[dict[str, Any]]
    image_root: Path | None = None
    path_images: bool = False

    def __len__(self) -> int:
        return len(self.ids)

    def image_source(self, i: int, cell: Any) -> Any:
        """Bytes or a path for :func:`georeason.images.load_image`."""
        if isinstance(cell, Mapping):
            if cell.get("bytes"):
                return cell["bytes"]
            cell = cell.get("path")
        if not isinstance(cell, str) or not cell:
            raise DistillError(f"row {i} has no image")
        return str(self.resolve(cell))

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        return (self.image_root or self.root) / p


def load_input(
    src: str | os.PathLike[str],
    *,
    split: str = "train",
    id_col: str | None = None,
    image_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
) -> DistillInput:
    """Load the images to distil: a ``save_to_disk`` folder (a DatasetDict gives ``split``)
    or a CSV / Parquet / JSON(L) table with image paths (relative to ``image_root``, default
    the table's folder), read by :func:`georeason.tables.open_dataset`. Truth labels are the
    table's columns when it has them (``continent, country_code, country, admin1, city``),
    else reverse-geocoded."""
    import datasets

    from georeason.geo import continent_of, country_name, normalize_country, reverse_geocode_batch
    from georeason.tables import ID_COLUMNS, IMAGE_COLUMNS, coordinate_columns, detect_column, open_dataset

    ds, root, _ = open_dataset(src, split)
    names = list(ds.column_names)
    idc = detect_column(names, id_col, ID_COLUMNS, "id", required=False, source=src)
    imc = detect_column(names, image_col, IMAGE_COLUMNS, "image", source=src)
    lac, loc = coordinate_columns(names, lat_col, lon_col, source=src)
    assert imc is not None
    ids = [str(x) for x in ds[idc]] if idc else [str(i) for i in range(len(ds))]
    if len(set(ids)) != len(ids):
        dup = next(k for k, v in Counter(ids).items() if v > 1)
        raise DistillError(f"ids must be unique (resuming relies on them); {dup!r} repeats")
    lat = np.array([_num(x) if _num(x) is not None else np.nan for x in ds[lac]], dtype=np.float64)
    lon = np.array([_num(x) if _num(x) is not None else np.nan for x in ds[loc]], dtype=np.float64)
    has_labels = all(k in names for k in ("country_code", "city"))
    truth: list[dict[str, Any]] = []
    if has_labels:
        cols = {k: ds[k] if k in names else [None] * len(ds) for k in _TRUTH_KEYS}
        for i in range(len(ds)):
            t: dict[str, Any] = {"lat": _num(lat[i]), "lon": _num(lon[i])}
            for k in _TRUTH_KEYS:
                v = cols[k][i]
                t[k] = str(v) if v not in (None, "") else None
            cc = t["country_code"] or normalize_country(t.get("country"))
            t["country_code"] = cc
            if cc and not t["country"]:
                t["country"] = country_name(cc)
            if cc and not t["continent"]:
                t["continent"] = continent_of(cc)
            t["source"] = "input"
            truth.append(t)
    else:
        table = reverse_geocode_batch(lat, lon)
        for i in range(len(ds)):
            t = {"lat": _num(lat[i]), "lon": _num(lon[i]), "source": "reverse_geocode"}
            for k in _TRUTH_KEYS:
                v = getattr(table, k)[i]
                t[k] = str(v) if v else None
            truth.append(t)
    path_images = not isinstance(ds.features.get(imc), datasets.Image)
    return DistillInput(
        dataset=ds,
        root=root,
        id_col=idc,
        image_col=imc,
        lat_col=lac,
        lon_col=loc,
        ids=ids,
        truth=truth,
        image_root=Path(image_root).expanduser() if image_root else None,
        path_images=path_images,
    )


def _image_cells(ds: Any, col: str, rows: Sequence[int]) -> list[Any]:
    import datasets

    sub = ds.select(list(rows)).select_columns([col])
    if isinstance(sub.features[col], datasets.Image):
        sub = sub.cast_column(col, datasets.Image(decode=False))
    return list(sub[col])


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


@dataclass
class DistillConfig:
    """Teachers, generation settings (fixed for a run folder) and filters (free to change)."""

    teachers: list[str]
    batch_size: int = 8
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    max_pixels: int | None = None
    device: str = "auto"
    concurrency: int = 8
    timeout: float = 120.0
    filters: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        if not self.teachers:
            raise DistillError("give at least one teacher (--teacher hf:PATH or openai:URL[:MODEL])")
        specs = self.specs()
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise DistillError(f"teacher names must be unique, got {names}")
        self.filters.needed(len(specs))
        if self.batch_size < 1:
            raise DistillError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens < 1:
            raise DistillError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise DistillError(f"temperature must be >= 0, got {self.temperature}")

    def specs(self) -> list[TeacherSpec]:
        return [parse_teacher(t, i) for i, t in enumerate(self.teachers)]

    def identity(self, src: str) -> dict[str, Any]:
        """What changes the teachers' outputs: a resumed run must keep it."""
        from georeason.rewards.judges import GLOBE_JUDGE_PROMPT

        return {
            "input": src,
            "teachers": [s.identity() for s in self.specs()],
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "max_pixels": self.max_pixels,
            "protocol": "globe",
            "judge_prompt": GLOBE_JUDGE_PROMPT,
        }


@dataclass
class DistillSummary:
    """What :func:`run_distill` did and what the dataset holds."""

    out_dir: Path
    n_images: int
    n_done_before: int
    n_new: int
    n_kept: int
    dropped: dict[str, int]
    seconds: float
    dataset_path: Path | None
    dropped_lines: int = 0
    teacher_failures: dict[str, int] = field(default_factory=dict)
    judge_failures: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["dataset_path"] = str(self.dataset_path) if self.dataset_path else None
        return d


class Teacher:
    """A backend asked for GLOBE answers and locatability judgements."""

    def __init__(self, spec: TeacherSpec, backend: Any, max_pixels: int | None) -> None:
        from georeason.rewards.judges import BackendJudge

        self.spec = spec
        self.backend = backend
        self.judge = BackendJudge(backend, max_pixels=max_pixels)

    def run(
        self, requests: list[Any], images: list[Any], settings: Mapping[str, Any]
    ) -> list[tuple[str | None, str | None, float | None, float | None, str | None]]:
        """``(completion, error, seconds, p_yes, judge_error)`` per request; never raises."""
        from georeason.infer.base import Response

        try:
            responses = self.backend.generate(requests, **settings)
            if len(responses) != len(requests):
                raise RuntimeError(f"{len(responses)} responses for {len(requests)} requests")
        except Exception as e:  # the backend contract says never; a broken one costs this batch only
            logger.exception("teacher %s: generate raised", self.spec.name)
            responses = [Response(id=r.id, text=None, error=f"{type(e).__name__}: {e}") for r in requests]
        ok = [k for k, r in enumerate(responses) if r.text is not None and r.error is None]
        p_yes: dict[int, float | None] = {}
        judge_err: dict[int, str | None] = {}
        if ok:
            try:
                scores = self.judge([responses[k].text or "" for k in ok], images=[images[k] for k in ok])
            except Exception as e:  # a judge failure is recorded per item, never a silent 0
                scores = [e] * len(ok)
            for k, s in zip(ok, scores, strict=True):
                if isinstance(s, BaseException):
                    p_yes[k], judge_err[k] = None, f"{type(s).__name__}: {s}"
                else:
                    p_yes[k], judge_err[k] = float(s), None
        out = []
        for k, r in enumerate(responses):
            good = k in p_yes
            out.append(
                (
                    r.text if good else None,
                    None if good else (r.error or "no text returned"),
                    r.seconds,
                    p_yes.get(k),
                    judge_err.get(k) if good else "no completion to judge",
                )
            )
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.backend.close()


def make_teacher(spec: TeacherSpec, config: DistillConfig) -> Teacher:
    """Create the backend of one teacher (``hf``: loaded here; ``openai``: a client)."""
    from georeason.infer import get_backend

    if spec.kind == "hf":
        backend = get_backend(
            "hf", spec.model, batch_size=config.batch_size, device=config.device, max_pixels=config.max_pixels
        )
    else:
        backend = get_backend(
            "openai",
            spec.model,
            base_url=spec.base_url,
            concurrency=config.concurrency,
            timeout=config.timeout,
            max_pixels=config.max_pixels,
        )
    return Teacher(spec, backend, config.max_pixels)


def run_distill(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: DistillConfig,
    *,
    split: str = "train",
    id_col: str | None = None,
    image_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    overwrite: bool = False,
    build_dataset: bool = True,
    teachers: Sequence[Teacher] | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = logger.info,
) -> DistillSummary:
    """Ask every teacher about every image not done yet, append ``records.jsonl``, build the dataset.

    Args:
        src: a ``datasets`` folder or a table of image paths (see :func:`load_input`).
        limit: distil the first N images only.
        retry_failed: redo the images where a teacher failed (backend error) or the
            image could not be read (their lines are removed first).
        overwrite: discard what ``out_dir`` holds and start again.
        build_dataset: write ``dataset/`` and ``summary.json`` at the end.
        teachers: already created teachers (default: from ``config.teachers``, created
            only when something is left to do).

    KeyboardInterrupt propagates after the batches already done are on disk.
    """
    from georeason.images import load_image
    from georeason.infer.base import Request
    from georeason.protocols import get_protocol

    t_start = time.perf_counter()
    specs = config.specs()
    if limit is not None and limit < 1:
        raise DistillError(f"limit must be >= 1, got {limit}")
    run = RunDir(
        out_dir, records_file=RECORDS_FILE, lock_file=LOCK_FILE, command="georeason data distill", log=log
    )
    out, rec_path = run.path, run.records.path
    with run.open():
        src_id = str(Path(src).expanduser().resolve())
        run.claim(config.identity(src_id), overwrite=overwrite, outputs=(SUMMARY_FILE, DATASET_DIR))
        data = load_input(
            src, split=split, id_col=id_col, image_col=image_col, lat_col=lat_col, lon_col=lon_col,
            image_root=image_root,
        )  # fmt: skip
        run.save(filters=asdict(config.filters))
        run.records.load(retry=_failed if retry_failed else None)
        n_total = len(data) if limit is None else min(limit, len(data))
        todo = [i for i in range(n_total) if data.ids[i] not in run.records.done]
        n_before = n_total - len(todo)
        if n_before:
            log(f"resuming: {n_before} of {n_total} images already done in {rec_path}")

        n_new = 0
        if todo:
            own = teachers is None
            if teachers is None:
                teachers = []
                for s in specs:
                    log(f"teacher {s.name}: {s.kind} {s.model}" + (f" at {s.base_url}" if s.base_url else ""))
                    teachers.append(make_teacher(s, config))
            if [t.spec.name for t in teachers] != [s.name for s in specs]:
                raise DistillError("the teachers given do not match config.teachers")
            messages = get_protocol("globe").messages()
            settings = {
                "max_new_tokens": config.max_new_tokens,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "seed": config.seed,
            }
            pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="georeason-distill-img")
            tpool = ThreadPoolExecutor(
                max_workers=len(teachers), thread_name_prefix="georeason-distill-teacher"
            )

            def load(args: tuple[int, Any]) -> tuple[Any, str | None]:
                i, cell = args
                try:
                    return load_image(data.image_source(i, cell), max_pixels=config.max_pixels), None
                except Exception as e:  # this image's failure, recorded
                    return None, f"{type(e).__name__}: {e}"

            def fetch(batch: Sequence[int]) -> Iterator[tuple[Any, str | None]]:
                cells = _image_cells(data.dataset, data.image_col, batch)
                return pool.map(load, list(zip(batch, cells, strict=True)))

            kept, dropped = 0, Counter()
            try:
                with Progress("distill", n_total, done=n_before, enabled=progress, log=log) as bar:
                    # decode ahead while the teachers work
                    for batch, loaded in read_ahead(batched(todo, config.batch_size), fetch):
                        t0 = time.perf_counter()
                        reqs, imgs, where = [], [], []
                        for k, (i, (img, _err)) in enumerate(zip(batch, loaded, strict=True)):
                            if img is not None:
                                reqs.append(Request(id=data.ids[i], image=img, messages=messages))
                                imgs.append(img)
                                where.append(k)
                        ask = functools.partial(Teacher.run, requests=reqs, images=imgs, settings=settings)
                        results = list(tpool.map(ask, teachers)) if reqs else []
                        lines = []
                        for k, (i, (_img, err)) in enumerate(zip(batch, loaded, strict=True)):
                            rec: dict[str, Any] = {
                                "id": data.ids[i],
                                "row": i,
                                "truth": data.truth[i],
                                "image_error": err,
                                "teachers": [],
                            }
                            if err is None:
                                pos = where.index(k)
                                for t, res in zip(teachers, results, strict=True):
                                    text, error, secs, py, jerr = res[pos]
                                    rec["teachers"].append(
                                        teacher_output(t.spec, text, error, secs, py, jerr, data.truth[i])
                                    )
                            dec = decide(rec, config.filters)
                            rec["decision"] = {"kept": dec.kept, "reason": dec.reason, "chosen": dec.chosen}
                            rec["seconds"] = (time.perf_counter() - t0) / len(batch)
                            lines.append(rec)
                            if dec.kept:
                                kept += 1
                            else:
                                dropped[str(dec.reason)] += 1
                        run.records.append(lines)
                        n_new += len(lines)
                        top = ", ".join(f"{k}: {v}" for k, v in dropped.most_common(3))
                        note = f"kept {kept}, dropped {dropped.total()}" + (f" ({top})" if top else "")
                        bar.update(len(lines), failed=sum(map(_failed, lines)), note=note)
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
                tpool.shutdown(wait=True)
                if own:
                    for t in teachers:
                        t.close()
        run.save(filters=asdict(config.filters))
        summary = DistillSummary(
            out_dir=out,
            n_images=n_total,
            n_done_before=n_before,
            n_new=n_new,
            n_kept=0,
            dropped={},
            seconds=0.0,
            dataset_path=None,
            dropped_lines=run.records.stats.n_dropped,
        )
        if build_dataset:
            finalize(out, data, config.filters, summary, limit=n_total, log=log)
        summary.seconds = time.perf_counter() - t_start
        if build_dataset:
            write_json(out / SUMMARY_FILE, summary.to_dict())
        return summary


def _failed(rec: Mapping[str, Any]) -> bool:
    """Redone by ``--retry-failed``: the image could not be read or a teacher failed."""
    return bool(rec.get("image_error")) or any(t.get("error") is not None for t in rec.get("teachers") or [])


def _dataset_features() -> Any:
    from datasets import Features, List, Value

    teacher = {
        "name": Value("string"),
        "kind": Value("string"),
        "model": Value("string"),
        "completion": Value("string"),
        "error": Value("string"),
        "seconds": Value("float64"),
        "p_yes": Value("float64"),
        "judge_error": Value("string"),
        "format_ok": Value("bool"),
        "parse_errors": List(Value("string")),
        "country": Value("string"),
        "country_code": Value("string"),
        "admin1": Value("string"),
        "city": Value("string"),
        "reasoning": Value("string"),
        "pred_lat": Value("float64"),
        "pred_lon": Value("float64"),
        "geocode_level": Value("string"),
        "distance_km": Value("float64"),
        "entities": List(Value("string")),
    }
    return Features(
        {
            "continent": Value("string"),
            "country_code": Value("string"),
            "country": Value("string"),
            "admin1": Value("string"),
            "city": Value("string"),
            "locatable": Value("bool"),
            "locatability": Value("float64"),
            "reasoning": Value("string"),
            "entities": List(Value("string")),
            "teacher": Value("string"),
            "agreement": Value("int32"),
            "teacher_outputs": List(teacher),
        }
    )


def finalize(
    out: Path,
    data: DistillInput,
    filters: FilterConfig,
    summary: DistillSummary,
    *,
    limit: int | None = None,
    log: Callable[[str], None] = logger.info,
) -> None:
    """Recompute every decision from ``records.jsonl`` with ``filters`` and write ``dataset/``."""
    import shutil

    import datasets

    records, _ = read_records(out / RECORDS_FILE)
    by_id = {str(r["id"]): r for r in records}
    n = len(data) if limit is None else min(limit, len(data))
    kept_rows: list[int] = []
    new_cols: dict[str, list[Any]] = {k: [] for k in _OUTPUT_COLUMNS}
    dropped: Counter[str] = Counter()
    t_fail: Counter[str] = Counter()
    j_fail: Counter[str] = Counter()
    features = _dataset_features()
    teacher_keys = list(features["teacher_outputs"].feature.keys())
    for i in range(n):
        rec = by_id.get(data.ids[i])
        if rec is None:
            continue
        for t in rec.get("teachers") or []:
            if t.get("error"):
                t_fail[str(t.get("name"))] += 1
            elif t.get("p_yes") is None:
                j_fail[str(t.get("name"))] += 1
        dec = decide(rec, filters)
        if not dec.kept:
            dropped[str(dec.reason)] += 1
            continue
        outs = rec["teachers"]
        assert dec.chosen is not None
        chosen = outs[dec.chosen]
        truth = data.truth[i]
        kept_rows.append(i)
        for k in _TRUTH_KEYS:
            new_cols[k].append(truth.get(k) or "")
        new_cols["locatable"].append(dec.locatable)
        new_cols["locatability"].append(dec.locatability)
        new_cols["reasoning"].append(chosen["reasoning"])
        new_cols["entities"].append(list(chosen.get("entities") or []))
        new_cols["teacher"].append(chosen["name"])
        new_cols["agreement"].append(len(dec.group))
        new_cols["teacher_outputs"].append([{k: t.get(k) for k in teacher_keys} for t in outs])
    summary.n_kept = len(kept_rows)
    summary.dropped = dict(dropped.most_common())
    summary.teacher_failures = dict(t_fail)
    summary.judge_failures = dict(j_fail)
    ds = data.dataset.select(kept_rows)
    # Canonical GeoSample names for the key columns; the labels and reasoning are ours.
    drop = [c for c in ds.column_names if c in _OUTPUT_COLUMNS]
    ds = ds.remove_columns(drop)
    renames = {data.image_col: "image", data.lat_col: "lat", data.lon_col: "lon"}
    # MP-16's IMG_ID is both the id and the image path: then "id" is added as a copy
    id_separate = bool(data.id_col) and data.id_col != data.image_col
    if id_separate:
        renames[str(data.id_col)] = "id"
    renames = {a: b for a, b in renames.items() if a != b}
    clash = [b for b in renames.values() if b in ds.column_names and b not in renames]
    if clash:
        ds = ds.remove_columns(clash)
    if renames:
        ds = ds.rename_columns(renames)
    if not id_separate:
        ds = ds.add_column("id", [data.ids[i] for i in kept_rows])
    if data.path_images:
        # Absolute paths: the dataset folder is elsewhere than the input's, so relative paths would break.
        ds = ds.remove_columns("image").add_column(
            "image", [str(data.resolve(str(c))) for c in _paths(data, kept_rows)]
        )
    extra = datasets.Dataset.from_dict(new_cols, features=features)
    if kept_rows:
        merged = datasets.concatenate_datasets([ds, extra], axis=1)
    else:  # concatenating 0-row tables side by side loses the columns: build the empty table directly
        both = datasets.Features({**ds.features, **features})
        merged = datasets.Dataset.from_dict({k: [] for k in both}, features=both)
    front = ["id", "image", "lat", "lon", *_OUTPUT_COLUMNS]
    merged = merged.select_columns(front + [c for c in merged.column_names if c not in front])
    target = out / DATASET_DIR
    tmp = out / (DATASET_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.DatasetDict({"train": merged}).save_to_disk(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    summary.dataset_path = target
    log(
        f"{summary.n_kept} of {sum(1 for i in range(n) if data.ids[i] in by_id)} distilled images kept"
        + (f"; dropped: {', '.join(f'{k} {v}' for k, v in dropped.most_common())}" if dropped else "")
        + f"; dataset at {target}"
    )
    if not kept_rows:
        log("no image was kept: the dataset is empty (see the drop reasons above)")


def _paths(data: DistillInput, rows: Sequence[int]) -> list[str]:
    cells = data.dataset.select(list(rows))[data.image_col] if rows else []
    return [str(c.get("path") if isinstance(c, Mapping) else c) for c in cells]


__all__ = [
    "CLUE_LEXICON",
    "DROP_REASONS",
    "Decision",
    "DistillConfig",
    "DistillError",
    "DistillInput",
    "DistillSummary",
    "FilterConfig",
    "RunMismatchError",
    "Teacher",
    "TeacherSpec",
    "decide",
    "extract_entities",
    "finalize",
    "load_input",
    "make_teacher",
    "parse_teacher",
    "run_distill",
    "teacher_output",
]
