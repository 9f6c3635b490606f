"""Core types shared by every layer (see DESIGN.md, "Core types")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTINENT_NAMES: dict[str, str] = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}

#: The place hierarchy, coarse to fine: the label columns of a dataset, the fields of
#: :class:`Place` (its first five) and the levels a prediction is judged at (Geo-R's Chain of Region).
PLACE_LEVELS: tuple[str, ...] = ("continent", "country_code", "country", "admin1", "city")


@dataclass(frozen=True, slots=True)
class Place:
    """A point's place in the hierarchy continent -> country -> admin1 -> city.

    ``continent`` is a GeoNames continent code (see :data:`CONTINENT_NAMES`),
    ``country_code`` an ISO 3166-1 alpha-2 code (territories keep their own code),
    ``city_lat``/``city_lon`` the coordinates of the gazetteer's populated place.
    """

    continent: str
    country_code: str
    country: str
    admin1: str
    city: str
    city_lat: float
    city_lon: float

    @property
    def continent_name(self) -> str:
        return CONTINENT_NAMES.get(self.continent, self.continent)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class GeoSample:
    """One labelled image. Optional labels are filled where a dataset has them."""

    id: str
    image: Any  # path (str | Path) or PIL.Image.Image
    lat: float
    lon: float
    continent: str | None = None
    country_code: str | None = None
    country: str | None = None
    admin1: str | None = None
    city: str | None = None
    locatable: bool | None = None
    reasoning: str | None = None
    entities: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.image, Path):
            d["image"] = str(self.image)
        return d


@dataclass(slots=True)
class Prediction:
    """What a parser read from one completion. Parsers never raise: a bad
    completion gives ``format_ok=False`` and the reasons in ``errors``."""

    continent: str | None = None
    country_code: str | None = None
    country: str | None = None
    admin1: str | None = None
    city: str | None = None
    lat: float | None = None
    lon: float | None = None
    reasoning: str = ""
    raw: str = ""
    format_ok: bool = False
    errors: list[str] = field(default_factory=list)
    n_coordinates: int = 0  # how many valid (lat, lon) pairs the answer held
    truncated: bool = False  # a length cap left text unread: the counts cover only the part read
    # How each of those pairs was written, in order: "paren" is "(lat, lon)" in decimals, the
    # form Geo-R's format reward asks for; the others are listed in
    # georeason.protocols.parsing.COORDINATE_FORMS ("bracket", "bare", "keyed", "hemisphere", "dms").
    coordinate_forms: list[str] = field(default_factory=list)
    think_tag: bool = False  # the completion held a <think> or </think> tag (any case)

    @property
    def has_coordinates(self) -> bool:
        return self.lat is not None and self.lon is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
