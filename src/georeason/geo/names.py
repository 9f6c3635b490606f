"""Name normalisation shared by forward geocoding, the metrics and the rewards.

Names are compared through a *key*: Latin-script names are transliterated to
ASCII (accents dropped: "Zürich" -> "zurich"), lower-cased, stripped of
punctuation, and common abbreviations are expanded ("St." -> "saint").
Names in other scripts keep their characters (NFKC, case-folded): transliterating
"巴黎" to "bali" would make it collide with the Indonesian island.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from anyascii import anyascii

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_TOKEN_EXPANSIONS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort", "n": "north", "s": "south"}
# Words that name the *kind* of an admin1 region, not the region itself:
# "Hokkaido Prefecture" == "Hokkaido", "Province of Buenos Aires" == "Buenos Aires".
_ADMIN1_NOISE = frozenset(
    [
        "province",
        "provincia",
        "state",
        "region",
        "prefecture",
        "oblast",
        "county",
        "department",
        "departement",
        "governorate",
        "district",
        "territory",
        "canton",
        "voivodeship",
        "autonomous",
        "community",
        "of",
        "the",
        "do",
    ]
)


def is_latin(text: str) -> bool:
    """Whether every letter of ``text`` is a Latin letter (accented ones included).

    >>> is_latin("Hà Nội"), is_latin("Москва")
    (True, False)
    """
    # Basic Latin to Latin Extended-B, plus Latin Extended Additional (Vietnamese).
    return not any(ch.isalpha() and ord(ch) > 0x24F and not 0x1E00 <= ord(ch) <= 0x1EFF for ch in text)


@lru_cache(maxsize=262_144)
def normalize_name(name: str) -> str:
    """Case-, accent- and punctuation-insensitive key of a place name.

    >>> normalize_name("  Côte d'Ivoire ")
    'cote divoire'
    >>> normalize_name("St. Petersburg") == normalize_name("Saint-Petersburg")
    True
    >>> normalize_name("東京")
    '東京'
    """
    if not isinstance(name, str):
        return ""
    text = unicodedata.normalize("NFKC", name).strip()
    if not text:
        return ""
    if not is_latin(text):
        return re.sub(r"[\s\W_]+", "", text.casefold())
    text = anyascii(text).lower().replace("&", " and ").replace("'", "").replace("’", "")
    tokens = _NON_ALNUM.sub(" ", text).split()
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    return " ".join(_TOKEN_EXPANSIONS.get(t, t) for t in tokens)


@lru_cache(maxsize=65_536)
def admin1_key(name: str) -> str:
    """Key of an admin1 name: :func:`normalize_name` without words like "Province".

    >>> admin1_key("Province of Buenos Aires") == admin1_key("Buenos Aires")
    True
    """
    key = normalize_name(name)
    kept = [t for t in key.split() if t not in _ADMIN1_NOISE]
    return " ".join(kept) if kept else key


# Common names and aliases that neither GeoNames nor Natural Earth spell out.
# Keys are normalised with normalize_name when the table is compiled.
COUNTRY_ALIASES: dict[str, str] = {
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "America": "US",
    "United States of America": "US",
    "the States": "US",
    "UK": "GB",
    "U.K.": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Czech Republic": "CZ",
    "Czechia": "CZ",
    "Ivory Coast": "CI",
    "Côte d'Ivoire": "CI",
    "Cote d'Ivoire": "CI",
    "Turkey": "TR",
    "Türkiye": "TR",
    "Turkiye": "TR",
    "Holland": "NL",
    "The Netherlands": "NL",
    "South Korea": "KR",
    "Korea": "KR",
    "Republic of Korea": "KR",
    "North Korea": "KP",
    "DPRK": "KP",
    "Russia": "RU",
    "Russian Federation": "RU",
    "Burma": "MM",
    "Myanmar": "MM",
    "Swaziland": "SZ",
    "Eswatini": "SZ",
    "Macedonia": "MK",
    "North Macedonia": "MK",
    "FYROM": "MK",
    "Cape Verde": "CV",
    "Cabo Verde": "CV",
    "East Timor": "TL",
    "Timor-Leste": "TL",
    "Vatican": "VA",
    "Vatican City": "VA",
    "Holy See": "VA",
    "DRC": "CD",
    "DR Congo": "CD",
    "Congo-Kinshasa": "CD",
    "Democratic Republic of the Congo": "CD",
    "Congo-Brazzaville": "CG",
    "Republic of the Congo": "CG",
    "Congo": "CG",
    "UAE": "AE",
    "Emirates": "AE",
    "Persia": "IR",
    "Iran": "IR",
    "Syria": "SY",
    "Laos": "LA",
    "Vietnam": "VN",
    "Viet Nam": "VN",
    "Bolivia": "BO",
    "Venezuela": "VE",
    "Tanzania": "TZ",
    "Moldova": "MD",
    "Brunei": "BN",
    "Taiwan": "TW",
    "Republic of China": "TW",
    "China": "CN",
    "PRC": "CN",
    "People's Republic of China": "CN",
    "Hong Kong": "HK",
    "Macau": "MO",
    "Macao": "MO",
    "Palestine": "PS",
    "Micronesia": "FM",
    "St Lucia": "LC",
    "Saint Lucia": "LC",
    "Bosnia": "BA",
    "Bosnia and Herzegovina": "BA",
    "Bosnia & Herzegovina": "BA",
    "Trinidad": "TT",
    "Trinidad and Tobago": "TT",
    "Antigua": "AG",
    "St Kitts": "KN",
    "Sao Tome": "ST",
    "São Tomé and Príncipe": "ST",
    "Deutschland": "DE",
    "Espana": "ES",
    "España": "ES",
    "Italia": "IT",
    "Brasil": "BR",
    "Nippon": "JP",
    "Nihon": "JP",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Österreich": "AT",
    "Polska": "PL",
    "Sverige": "SE",
    "Norge": "NO",
    "Danmark": "DK",
    "Suomi": "FI",
    "Hellas": "GR",
    "Éire": "IE",
    "Eire": "IE",
    "Kosovo": "XK",
    "Falklands": "FK",
    "Reunion": "RE",
    "Réunion": "RE",
    "Curacao": "CW",
    "Curaçao": "CW",
    "Svalbard": "SJ",
    "Aland": "AX",
    "Åland": "AX",
    "Faroe Islands": "FO",
    "Faroes": "FO",
    "Greenland": "GL",
    "Guam": "GU",
    "Puerto Rico": "PR",
    "French Guiana": "GF",
    "Guadeloupe": "GP",
    "Martinique": "MQ",
    "Mayotte": "YT",
    "New Caledonia": "NC",
    "French Polynesia": "PF",
    "Tahiti": "PF",
    "Caribbean Netherlands": "BQ",
    "Bonaire": "BQ",
    "US Virgin Islands": "VI",
    "British Virgin Islands": "VG",
    "Western Sahara": "EH",
    "Gambia": "GM",
    "The Gambia": "GM",
    "Bahamas": "BS",
    "The Bahamas": "BS",
    # ISO 3166 names that are not in inverted form (see gazetteer._inverted_country).
    "Bonaire, Sint Eustatius and Saba": "BQ",
    "Saint Helena, Ascension and Tristan da Cunha": "SH",
    "Taiwan, Province of China": "TW",
    "Cocos (Keeling) Islands": "CC",
    "U.S. Virgin Islands": "VI",
    "Vatican City State": "VA",
    "Brunei Darussalam": "BN",
    # Endonyms and formal names in Latin letters that none of Natural Earth's 25
    # languages gives (its Russian, Ukrainian, Greek and Chinese names are
    # romanised when compiling: "Rossiya", "Ellada"; but its Chinese name of
    # China is the long form, "Zhonghuarenmingongheguo").
    "Zhongguo": "CN",
    "Bundesrepublik Deutschland": "DE",
    "République française": "FR",
    "Reino de España": "ES",
    "Repubblica Italiana": "IT",
    "Rzeczpospolita Polska": "PL",
    "Helvetia": "CH",
    "Confoederatio Helvetica": "CH",
    "Magyar": "HU",
    "Hrvatska": "HR",
    "Slovensko": "SK",
    "Slovenija": "SI",
    "Srbija": "RS",
    "Crna Gora": "ME",
    "Bosna i Hercegovina": "BA",
    "Makedonija": "MK",
    "Shqipëria": "AL",
    "Shqipëri": "AL",
    "Balgariya": "BG",
    "Bălgarija": "BG",
    "Eesti": "EE",
    "Latvija": "LV",
    "Lietuva": "LT",
    "Lëtzebuerg": "LU",
    "Cymru": "GB",
    "Føroyar": "FO",
    "Kalaallit Nunaat": "GL",
    "Ukrayina": "UA",
    "Bielaruś": "BY",
    "Sakartvelo": "GE",
    "Hayastan": "AM",
    "Azərbaycan": "AZ",
    "Azerbaycan": "AZ",
    "Qazaqstan": "KZ",
    "Oʻzbekiston": "UZ",
    "O'zbekiston": "UZ",
    "Tojikiston": "TJ",
    "Mongol Uls": "MN",
    "Misr": "EG",
    "Masr": "EG",
    "Al-Maghrib": "MA",
    "Al-Jazair": "DZ",
    "Bharat": "IN",
    "Bhārat": "IN",
    "Hanguk": "KR",
    "Daehan Minguk": "KR",
    "Choson": "KP",
    "Chosŏn": "KP",
    "Prathet Thai": "TH",
    "Muang Thai": "TH",
    "Kampuchea": "KH",
    "Pilipinas": "PH",
    "Aotearoa": "NZ",
    "Druk Yul": "BT",
    # Short native names that Natural Earth's NAME_xx fields give only in long form.
    "中国": "CN",
    "中國": "CN",
    "台灣": "TW",
    "台湾": "TW",
    "한국": "KR",
    "澳門": "MO",
}
