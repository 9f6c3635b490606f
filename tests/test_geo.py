"""georeason.geo: distances, reverse and forward geocoding, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from georeason import geo

# ---------------------------------------------------------------- distances


def test_paris_london() -> None:
    assert geo.haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=0.5)


def test_antipodes_and_zero() -> None:
    assert geo.haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * geo.EARTH_RADIUS_KM, rel=1e-12)
    assert geo.haversine_km(90, 0, -90, 0) == pytest.approx(20015.1, abs=0.1)
    assert geo.haversine_km(12.3, 45.6, 12.3, 45.6) == 0.0


def test_haversine_is_vectorised_and_symmetric() -> None:
    lat1, lon1 = np.array([0.0, 10.0, -33.9]), np.array([0.0, 20.0, 151.2])
    lat2, lon2 = np.array([1.0, -10.0, 40.7]), np.array([1.0, -20.0, -74.0])
    d = geo.haversine_km(lat1, lon1, lat2, lon2)
    assert isinstance(d, np.ndarray) and d.shape == (3,)
    np.testing.assert_allclose(d, geo.haversine_km(lat2, lon2, lat1, lon1))
    for i in range(3):
        assert d[i] == pytest.approx(geo.haversine_km(lat1[i], lon1[i], lat2[i], lon2[i]))
    assert isinstance(geo.haversine_km(1, 2, 3, 4), float)
    # broadcasting one point against many
    assert geo.haversine_km(0.0, 0.0, lat2, lon2).shape == (3,)


def test_haversine_nan_is_nan() -> None:
    assert math.isnan(geo.haversine_km(float("nan"), 0, 0, 0))


# ------------------------------------------------------- reverse geocoding

# (lat, lon, ISO code): enclaves, exclaves, microstates, border towns. Natural
# Earth 10m borders are simplified by up to ~1 km, so border-town points sit
# at least 2 km inside their country.
BORDERS = [
    (42.4636, 1.9806, "ES"),  # Llívia, Spanish exclave inside France
    # (Büsingen, the German exclave in Switzerland, is below Natural Earth 10m's detail.)
    (54.7104, 20.4522, "RU"),  # Kaliningrad, Russian exclave
    (39.2090, 45.4123, "AZ"),  # Nakhchivan, Azerbaijani exclave
    (-9.2000, 124.3500, "TL"),  # Oecusse, Timor-Leste exclave in Indonesian West Timor
    (35.8890, -5.3213, "ES"),  # Ceuta, on the African coast
    (-5.5500, 12.2000, "AO"),  # Cabinda, Angolan exclave
    (41.9029, 12.4534, "VA"),  # St Peter's, Vatican City
    (43.9356, 12.4473, "SM"),  # San Marino
    (43.7384, 7.4246, "MC"),  # Monaco
    (-29.3151, 27.4869, "LS"),  # Maseru, Lesotho (enclave in South Africa)
    (48.5734, 7.7521, "FR"),  # Strasbourg ...
    (48.5700, 7.8150, "DE"),  # ... and Kehl across the Rhine
    (51.1450, 14.9550, "DE"),  # Görlitz ...
    (51.1500, 15.0150, "PL"),  # ... and Zgorzelec across the Neisse
    (31.6904, -106.4245, "MX"),  # Ciudad Juárez ...
    (31.7619, -106.4850, "US"),  # ... and El Paso
    (45.9300, 13.5950, "IT"),  # Gorizia ...
    (45.9560, 13.6483, "SI"),  # ... and Nova Gorica
]

# Islands and territories that keep their own ISO 3166-1 code.
TERRITORIES = [
    (-20.8789, 55.4481, "RE"),  # Saint-Denis, Réunion
    (16.2650, -61.5510, "GP"),  # Pointe-à-Pitre, Guadeloupe
    (14.6161, -61.0588, "MQ"),  # Fort-de-France, Martinique
    (4.9224, -52.3135, "GF"),  # Cayenne, French Guiana
    (-12.7806, 45.2279, "YT"),  # Mamoudzou, Mayotte
    (18.4655, -66.1057, "PR"),  # San Juan, Puerto Rico
    (13.4757, 144.7489, "GU"),  # Hagåtña, Guam
    (22.2800, 114.1588, "HK"),  # Central, Hong Kong
    (22.1987, 113.5439, "MO"),  # Macau
    (64.1814, -51.6941, "GL"),  # Nuuk, Greenland
    (62.0097, -6.7716, "FO"),  # Tórshavn, Faroe Islands
    (-22.2758, 166.4580, "NC"),  # Nouméa, New Caledonia
    (-17.5516, -149.5585, "PF"),  # Papeete, French Polynesia
    (60.0973, 19.9348, "AX"),  # Mariehamn, Åland
    (78.2232, 15.6267, "SJ"),  # Longyearbyen, Svalbard
    (12.1443, -68.2655, "BQ"),  # Kralendijk, Bonaire
    (-10.4217, 105.6791, "CX"),  # Flying Fish Cove, Christmas Island
    (21.3069, -157.8583, "US"),  # Honolulu
    (-42.8821, 147.3272, "AU"),  # Hobart, Tasmania
    (38.1157, 13.3615, "IT"),  # Palermo, Sicily
    (28.1235, -15.4363, "ES"),  # Las Palmas, Canary Islands
    (37.7412, -25.6756, "PT"),  # Ponta Delgada, Azores
    (-6.1659, 39.2026, "TZ"),  # Zanzibar City
    (25.0330, 121.5654, "TW"),  # Taipei
    (42.6629, 21.1655, "XK"),  # Pristina, Kosovo
]


@pytest.mark.parametrize(("lat", "lon", "code"), BORDERS + TERRITORIES)
def test_country_codes(lat: float, lon: float, code: str) -> None:
    assert geo.reverse_geocode(lat, lon).country_code == code


def test_batch_agrees_with_single_calls() -> None:
    pts = BORDERS + TERRITORIES
    table = geo.reverse_geocode_batch([p[0] for p in pts], [p[1] for p in pts])
    assert list(table.country_code) == [p[2] for p in pts]
    assert table.valid.all()  # (coastal city centres may fall just off the simplified coastline)
    for i, (lat, lon, _) in enumerate(pts):
        assert table[i] == geo.reverse_geocode(lat, lon)


def test_full_hierarchy() -> None:
    p = geo.reverse_geocode(35.6895, 139.6917)
    assert (p.continent, p.country_code, p.country, p.admin1, p.city) == (
        "AS",
        "JP",
        "Japan",
        "Tokyo",
        "Tokyo",
    )
    assert p.continent_name == "Asia"
    assert geo.haversine_km(35.6895, 139.6917, p.city_lat, p.city_lon) < 5
    ny = geo.reverse_geocode(40.7128, -74.0060)
    assert (ny.continent, ny.country_code, ny.admin1) == ("NA", "US", "New York")
    rio = geo.reverse_geocode(-22.9068, -43.1729)
    assert (rio.continent, rio.country_code, rio.admin1) == ("SA", "BR", "Rio de Janeiro")


def test_city_is_in_the_points_own_country() -> None:
    # Kehl's nearest GeoNames place may be Strasbourg; the answer must stay German.
    p = geo.reverse_geocode(48.5700, 7.8150)
    assert p.country_code == "DE"
    idx = geo.gazetteer()
    rows = np.flatnonzero(idx.name == p.city)
    assert "DE" in set(idx.country_code[rows])


def test_never_minus_99() -> None:
    # Natural Earth's -99 areas: British bases on Cyprus, Guantánamo, Bir Tawil, Spratly Islands.
    for lat, lon in [(34.99, 33.75), (34.62, 32.95), (19.91, -75.15), (21.87, 33.70), (10.38, 114.36)]:
        code = geo.reverse_geocode(lat, lon).country_code
        assert code != "-99" and len(code) == 2 and code.isalpha()
    rng = np.random.default_rng(0)
    t = geo.reverse_geocode_batch(rng.uniform(-90, 90, 20_000), rng.uniform(-180, 180, 20_000))
    codes = set(t.country_code)
    assert "-99" not in codes and all(len(c) == 2 for c in codes)
    assert set(t.continent) <= set(geo.CONTINENT_NAMES)


def test_sea_falls_back_to_nearest_country() -> None:
    p = geo.reverse_geocode(43.0, 5.5)  # in the sea, 25 km off Marseille
    assert p.country_code == "FR"
    t = geo.reverse_geocode_batch([43.0, 43.2965], [5.5, 5.3698])
    assert list(t.on_land) == [False, True]
    assert geo.reverse_geocode(0.0, 0.0).country_code  # Gulf of Guinea: some country, no error


def test_poles_and_antimeridian() -> None:
    assert geo.reverse_geocode(-90, 0).country_code == "AQ"
    assert geo.reverse_geocode(-90, 180).country_code == "AQ"
    assert geo.reverse_geocode(64.73, 177.5).country_code == "RU"  # Anadyr
    assert geo.reverse_geocode(-17.8, 178.0).country_code == "FJ"
    assert geo.reverse_geocode(-17.8, -178.8).country_code == "FJ"  # Lau islands east of 180°


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("lat", "lon", "needle"),
    [
        (float("nan"), 0.0, "nan"),
        (0.0, float("inf"), "inf"),
        (90.5, 0.0, "90.5"),
        (-91, 0.0, "-91"),
        (0.0, 180.01, "180.01"),
        (0.0, -200, "-200"),
        ("48.8", 2.3, "'48.8'"),
        (None, 2.3, "None"),
        (True, 2.3, "True"),
        (0.0, [1.0], "[1.0]"),
    ],
)
def test_single_call_rejects_bad_values(lat: object, lon: object, needle: str) -> None:
    with pytest.raises(ValueError, match=__import__("re").escape(needle)):
        geo.reverse_geocode(lat, lon)  # type: ignore[arg-type]


def test_batch_marks_bad_rows_and_finishes_the_rest() -> None:
    lats = [48.8566, float("nan"), 95.0, "abc", 35.6895, None, 10.0]
    lons = [2.3522, 0.0, 0.0, 1.0, 139.6917, 5.0, float("-inf")]
    t = geo.reverse_geocode_batch(lats, lons)
    assert list(t.valid) == [True, False, False, False, True, False, False]
    assert list(t.country_code) == ["FR", "", "", "", "JP", "", ""]
    assert t[1] is None and t[0] is not None
    assert "95.0" in t.errors[2] and "'abc'" in t.errors[3] and "None" in t.errors[5] and "inf" in t.errors[6]
    assert t.errors[0] is None and np.isnan(t.city_lat[1])
    frame = t.to_frame()
    assert len(frame) == 7 and {"country_code", "valid", "errors"} <= set(frame.columns)


def test_batch_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 latitudes but 1 longitudes"):
        geo.reverse_geocode_batch([1.0, 2.0], [3.0])


def test_empty_batch() -> None:
    t = geo.reverse_geocode_batch(np.array([]), np.array([]))
    assert len(t) == 0


# ------------------------------------------------------- forward geocoding


@pytest.mark.parametrize(
    ("alias", "code"),
    [
        ("USA", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("us", "US"),
        ("USA ", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Czechia", "CZ"),
        ("Czech Republic", "CZ"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("TUR", "TR"),
        ("fra", "FR"),
        ("Deutschland", "DE"),
        ("South Korea", "KR"),
        ("Russia", "RU"),
        ("the Netherlands", "NL"),
        ("Viet Nam", "VN"),
        ("DR Congo", "CD"),
        ("Eswatini", "SZ"),
        ("Swaziland", "SZ"),
        ("Réunion", "RE"),
        ("中国", "CN"),
        ("日本", "JP"),
        ("Россия", "RU"),
        ("Allemagne", "DE"),
        ("Österreich", "AT"),
    ],
)
def test_country_aliases(alias: str, code: str) -> None:
    assert geo.normalize_country(alias) == code


def test_unknown_country() -> None:
    assert geo.normalize_country("Atlantis") is None
    assert geo.normalize_country("") is None
    assert geo.normalize_country(None) is None
    assert geo.forward_geocode("Paris", country="Atlantis") is None


def test_forward_case_and_accent_insensitive() -> None:
    for q in ("São Paulo", "SAO PAULO", "sao paulo", "São  Paulo"):
        p = geo.forward_geocode(q)
        assert p is not None and p.country_code == "BR" and p.admin1 == "São Paulo"
    assert geo.forward_geocode("Zurich").city == "Zürich"  # type: ignore[union-attr]
    assert geo.forward_geocode("München", country="DE").city == "Munich"  # type: ignore[union-attr]
    assert geo.forward_geocode("東京").city == "Tokyo"  # type: ignore[union-attr]


def test_forward_population_tiebreak_and_disambiguation() -> None:
    paris = geo.forward_geocode("Paris")
    assert paris is not None and paris.country_code == "FR"
    assert geo.forward_geocode("Paris", country="United States").admin1 == "Texas"  # type: ignore[union-attr]
    springfield = geo.forward_geocode("Springfield", admin1="Illinois", country="USA")
    assert springfield is not None and springfield.admin1 == "Illinois"
    # an admin1 that matches none of the candidates is ignored, not fatal
    assert geo.forward_geocode("Paris", admin1="Nowhere", country="FR").city == "Paris"  # type: ignore[union-attr]
    assert geo.forward_geocode("Nowhereville-sur-Mer") is None


def test_forward_levels_without_city() -> None:
    p = geo.forward_geocode(admin1="Hokkaido Prefecture", country="Japan")
    assert p is not None and (p.country_code, p.admin1, p.city) == ("JP", "Hokkaido", "")
    c = geo.forward_geocode(country="Ivory Coast")
    assert c is not None and (c.country_code, c.continent, c.city) == ("CI", "AF", "")
    assert geo.forward_geocode() is None


def test_forward_then_reverse_round_trip() -> None:
    for city, country in [
        ("Nairobi", "Kenya"),
        ("Lima", "Peru"),
        ("Reykjavik", "Iceland"),
        ("Perth", "Australia"),
    ]:
        p = geo.forward_geocode(city, country=country)
        assert p is not None
        back = geo.reverse_geocode(p.city_lat, p.city_lon)
        assert back.country_code == p.country_code


def test_names_match() -> None:
    assert geo.names_match("USA", "United States", level="country")
    assert not geo.names_match("Austria", "Australia", level="country")
    assert geo.names_match("Province of Buenos Aires", "Buenos Aires", level="admin1")
    assert geo.names_match("Munich", "München", level="city")
    assert geo.names_match("Saint Petersburg", "St. Petersburg", level="city")
    assert not geo.names_match("Paris", "Paris, Texas", level="city")
    assert not geo.names_match("", "Paris")
    with pytest.raises(ValueError, match="level"):
        geo.names_match("a", "b", level="street")


def test_continents_and_names() -> None:
    assert geo.continent_of("FR") == "EU" and geo.continent_of("br") == "SA"
    assert geo.continent_of("ZZ") is None
    assert geo.country_name("CI") == "Ivory Coast"
    assert geo.normalize_name("  Côte d'Ivoire ") == "cote divoire"


def test_cli_geocode(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "georeason.cli", "geocode", "--lat", "-33.8688", "--lon", "151.2093"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    place = json.loads(out)
    assert place["country_code"] == "AU" and place["city"] == "Sydney"
    bad = subprocess.run(
        [sys.executable, "-m", "georeason.cli", "geocode", "--lat", "100", "--lon", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "100" in bad.stderr
