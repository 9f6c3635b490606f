"""Locate photos: image -> backend -> protocol parser -> gazetteer place, with EXIF scoring.

Shared by ``georeason locate`` and ``georeason serve``'s ``/v1/locate``. Three steps,
so a server can run the middle one through its batching worker:

1. :func:`prepare` loads the image safely (:func:`georeason.images.load_image`),
   reads its EXIF GPS fix and builds the backend :class:`~georeason.infer.base.Request`;
2. the backend generates;
3. :func:`finish` parses the completion with the protocol and resolves the place:
   predicted coordinates -> the gazetteer's place by reverse geocoding; an answer
   without coordinates (GLOBE names a city and a country) -> coordinates by forward
   geocoding. With an EXIF fix, the great-circle error in km.

Every failure (unreadable image, backend error, unparseable answer, a name the
gazetteer does not know) is recorded in the result; nothing here raises for one image.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from georeason.infer.base import Backend, Request, Response


@dataclass
class LocateResult:
    """What ``georeason locate`` reports for one image (JSON-ready via :meth:`to_dict`)."""

    source: str
    protocol: str
    ok: bool = False  # the image loaded and the backend answered (the answer may still be unparseable)
    error: str | None = None  # why it failed (image or backend), None when ok
    reasoning: str = ""  # the model's reasoning chain (<think> ... </think>)
    answer: str | None = None  # the raw completion
    prediction: dict[str, Any] | None = None  # the parsed Prediction
    lat: float | None = None  # predicted coordinates (stated, or geocoded from names)
    lon: float | None = None
    coordinates_from: str | None = None  # "answer" | "geocoded"
    place: dict[str, Any] | None = None  # gazetteer place of (lat, lon), or of the named city/country
    exif_gps: tuple[float, float] | None = None  # the photo's own GPS fix
    error_km: float | None = None  # great-circle distance prediction -> EXIF fix
    warnings: list[str] = field(default_factory=list)  # parse / geocoding problems
    seconds: float | None = None
    # With K > 1 samples: how they were reduced and how much they agree (georeason.consensus):
    # method, n_samples, n_located, index (the chosen sample), lat, lon, agreement_25km,
    # country_agreement, radius_km; and every sampled completion.
    consensus: dict[str, Any] | None = None
    samples: list[str] = field(default_factory=list)
    # For a reader (the locate page): spans of ``reasoning`` naming clues and places
    # (georeason.protocols.clues), and per level (continent, country, admin1, city) what the
    # answer said, what the gazetteer place is, and whether they agree (georeason.match.judge;
    # None where the answer names no such level or there is no place).
    highlights: list[dict[str, Any]] = field(default_factory=list)
    levels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.exif_gps is not None:
            d["exif_gps"] = {"lat": self.exif_gps[0], "lon": self.exif_gps[1]}
        return d


def _source_name(source: Any) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def prepare(
    source: str | os.PathLike[str] | bytes,
    protocol: str,
    *,
    request_id: str | None = None,
    max_pixels: int | None = None,
    max_image_pixels: int | None = None,
    name: str | None = None,
) -> tuple[LocateResult, Request | None]:
    """Load one image and build its request; on failure the result holds the error and the request is None."""
    from georeason.images import DEFAULT_MAX_IMAGE_PIXELS, ImageError, exif_gps, load_image
    from georeason.protocols import get_protocol

    result = LocateResult(source=name or _source_name(source), protocol=protocol)
    proto = get_protocol(protocol)
    try:
        image = load_image(
            source, max_pixels=max_pixels, max_image_pixels=max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS
        )
    except ImageError as e:
        result.error = str(e)
        return result, None
    try:
        result.exif_gps = exif_gps(source)
    except Exception as e:  # the image loaded; a GPS block we cannot read only costs the score
        result.warnings.append(f"EXIF GPS unreadable: {e}")
    req = Request(id=request_id or result.source, image=image, messages=proto.messages())
    return result, req


def resolve_place(pred: Any) -> tuple[float | None, float | None, str | None, Any, list[str]]:
    """``(lat, lon, coordinates_from, place, warnings)`` for a Prediction.

    Stated coordinates win (reverse-geocoded to name their place); otherwise the
    named city / admin1 / country are placed by :func:`georeason.match.place_by_names`
    (GLOBE answers), as the evaluation places them.
    """
    from georeason.geo import reverse_geocode
    from georeason.match import place_by_names

    warnings: list[str] = []
    if pred.lat is not None and pred.lon is not None:
        try:
            return pred.lat, pred.lon, "answer", reverse_geocode(pred.lat, pred.lon), warnings
        except ValueError as e:
            warnings.append(f"cannot reverse-geocode ({pred.lat}, {pred.lon}): {e}")
            return pred.lat, pred.lon, "answer", None, warnings
    country = pred.country or pred.country_code
    if pred.city or pred.admin1 or country:
        # The rule the evaluation and the rewards use (georeason.match).
        placed = place_by_names(pred)
        if placed is None:
            named = ", ".join(x for x in (pred.city, pred.admin1, country) if x)
            warnings.append(f"the gazetteer does not know {named!r}")
            return None, None, None, None, warnings
        if placed.level == "city (country ignored)":
            warnings.append(f"{pred.city!r} is not a place in {country!r}: placed where the gazetteer has it")
        elif pred.city and placed.level != "city":
            warnings.append(
                f"the gazetteer does not know the city {pred.city!r}: placed by its {placed.level}"
            )
        return placed.lat, placed.lon, "geocoded", placed.place, warnings
    warnings.append("the answer names no place and gives no coordinates")
    return None, None, None, None, warnings


def _levels(pred: Any, place: Any) -> dict[str, dict[str, Any]]:
    """Per level: the answer's words, the gazetteer place's, and whether they agree."""
    from georeason.match import LEVELS, Truth, judge
    from georeason.types import CONTINENT_NAMES

    said = {
        "continent": CONTINENT_NAMES.get(pred.continent or "", pred.continent),
        "country": pred.country or pred.country_code,
        "admin1": pred.admin1,
        "city": pred.city,
    }
    verdicts: dict[str, bool | None] = {}
    found: dict[str, str | None] = dict.fromkeys(LEVELS)
    if place is not None:
        truth = Truth(place.continent, place.country_code, place.country, place.admin1, place.city)
        verdicts = judge(pred, truth)
        found = {
            "continent": place.continent_name,
            "country": place.country,
            "admin1": place.admin1,
            "city": place.city,
        }
    return {
        level: {
            "said": said[level],
            "found": found[level] or None,
            "agree": verdicts.get(level) if said[level] else None,
        }
        for level in LEVELS
    }


def finish(result: LocateResult, response: Response, *, aggregate: str = "medoid") -> LocateResult:
    """Parse the completion, resolve the place and score against the EXIF fix.

    A response holding K > 1 samples is reduced by :func:`georeason.consensus.aggregate`
    (``aggregate``): the reported answer and chain are the chosen sample's, the point the
    consensus point, and ``consensus`` says how much the samples agree.
    """
    from georeason.consensus import aggregate as reduce_samples
    from georeason.geo import haversine_km, reverse_geocode
    from georeason.protocols import get_protocol
    from georeason.protocols.clues import clue_spans

    result.seconds = response.seconds
    if response.text is None:
        result.error = response.error or "the backend returned no text"
        return result
    result.ok = True
    protocol = get_protocol(result.protocol)
    text = response.text
    consensus = None
    if response.samples:
        consensus = reduce_samples([protocol.parse(t) for t in response.samples], aggregate)
        result.samples = list(response.samples)
        result.consensus = consensus.to_dict()
        text = response.samples[consensus.index or 0]
    result.answer = text
    pred = protocol.parse(text)
    result.prediction = pred.to_dict()
    result.reasoning = pred.reasoning
    result.warnings.extend(pred.errors)
    lat, lon, how, place, warnings = resolve_place(pred)
    if (
        consensus is not None
        and consensus.lat is not None
        and consensus.lon is not None
        and (consensus.lat, consensus.lon) != (lat, lon)  # the geometric median's own point
    ):
        lat, lon, how = consensus.lat, consensus.lon, f"consensus:{consensus.method}"
        place = reverse_geocode(lat, lon)
    result.warnings.extend(warnings)
    result.lat, result.lon, result.coordinates_from = lat, lon, how
    result.place = {**place.to_dict(), "continent_name": place.continent_name} if place is not None else None
    result.highlights = clue_spans(pred.reasoning, pred)
    result.levels = _levels(pred, place)
    if result.exif_gps is not None and lat is not None and lon is not None:
        result.error_km = float(haversine_km(lat, lon, result.exif_gps[0], result.exif_gps[1]))
    return result


def locate(
    backend: Backend,
    sources: list[str | Path | bytes],
    *,
    protocol: str = "geor",
    max_pixels: int | None = None,
    max_new_tokens: int = 512,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    samples: int = 1,
    aggregate: str = "medoid",
) -> list[LocateResult]:
    """Locate each image; one result per source, in order (failures included).

    ``samples`` K > 1 draws K answers per image in one backend call (needs ``temperature
    > 0``) and reports the one ``aggregate`` chooses, with the samples' agreement.
    """
    from georeason.consensus import AGGREGATORS

    if aggregate not in AGGREGATORS:
        raise ValueError(f"unknown aggregation {aggregate!r}; choose one of {', '.join(AGGREGATORS)}")
    prepared = [prepare(s, protocol, request_id=str(i), max_pixels=max_pixels) for i, s in enumerate(sources)]
    requests = [req for _, req in prepared if req is not None]
    sampling = {"n": samples} if samples > 1 else {}
    responses = (
        backend.generate(
            requests,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            **sampling,
        )
        if requests
        else []
    )
    by_id = {r.id: r for r in responses}
    out = []
    for i, (result, req) in enumerate(prepared):
        if req is not None:
            resp = by_id.get(str(i)) or Response(
                id=str(i), text=None, error="the backend returned no response"
            )
            finish(result, resp, aggregate=aggregate)
        out.append(result)
    return out
