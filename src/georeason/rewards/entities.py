"""The visual entities a reasoning text names: what GLOBE's ``R_vis`` checks (docs/distill.md).

Shared by distillation (the ``entities`` column) and the grounded visual reward
(:class:`georeason.rewards.globe.VisualPrecision`), which grounds the entities a completion names.
"""

from __future__ import annotations

import re
from functools import lru_cache

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


__all__ = ["CLUE_LEXICON", "extract_entities"]
