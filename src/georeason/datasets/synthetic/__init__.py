"""A synthetic world that a tiny VLM can learn: procedural photos of real places.

Each image is drawn (PIL + numpy, no torch) for a real GeoNames city with clues
that follow the place hierarchy; docs/synthetic_world.md explains the design,
the split and the ceilings. In short:

=============  =====================================  =====================================
clue           what it shows                          what it encodes
=============  =====================================  =====================================
palette        sky and ground colours (background)    continent (its "climate")
banner         flag with three stripes, on a pole     country (unique in the world)
sign           coloured shape on a pole               admin1 (unique only within its country)
landmark       dark silhouette on the horizon         city (unique only within its admin1)
road tint      colour of the road in the foreground   where the photo is inside its country,
                                                      continuously (red = north, blue = east)
=============  =====================================  =====================================

Signs and landmarks are reused across countries and regions, so reading them
needs the coarser levels first: the clues follow the hierarchy continent ->
country -> admin1 -> city. The road tint is the one *continuous* clue: its colour
varies linearly with the photo's latitude and longitude inside the country's
bounding box, so a model can place a photo of a city it has never seen, and a
distance reward has a gradient beyond exact class matching.

The split is BY PLACE: in every admin1 region some cities are held out for the
test split; their regions (banner, sign, palette) are all seen in training, but
their landmark and name never are. Coarse levels therefore generalise, while the
coordinates of a held-out city can only be inferred from the road tint. A model
that imitates training answers names a seen city and copies its coordinates
(error: the distance between cities of the region, ~100 km); a model optimised
for distance can read the tint and do better. :func:`oracle_predict` computes
its bounds ("namer", "centre", "snap", "reader") on every generated image.

Determinism: the places and their codebook (which banner is France's, which
sign is Bavaria's) depend only on the gazetteer and the world-size arguments;
``seed`` draws the train/test split of cities and every photo. The same
arguments give byte-identical PNGs and identical rows.

Modules by role: :mod:`.world` (places, codebook, split:
:meth:`SyntheticWorld.from_gazetteer`), :mod:`.clues` (legible clues, road tint,
reasoning text), :mod:`.render` (drawing a photo), :mod:`.oracle` (ceilings) and
:mod:`.dataset` (the entry point :func:`generate_world`: world + datasets; the spread
pool; saving). Importing the package stays light: ``datasets`` is imported by the
functions that build datasets.
"""

from georeason.datasets.synthetic.clues import (
    TINT_GREEN,
    TINT_LOW,
    TINT_SPAN,
    ClueRates,
    Clues,
    decode_tint,
    describe,
    tint_direction,
    tint_of,
)
from georeason.datasets.synthetic.dataset import (
    SyntheticData,
    draw_spread_photos,
    generate_world,
    iter_samples,
    save_world,
)
from georeason.datasets.synthetic.oracle import ORACLE_MODES, OraclePrediction, ceiling_report, oracle_predict
from georeason.datasets.synthetic.render import render_image
from georeason.datasets.synthetic.world import (
    BANNER_COLOURS,
    CONTINENT_PRIORITY,
    GLYPHS,
    PALETTES,
    SIGN_COLOURS,
    SIGN_SHAPES,
    SyntheticWorld,
    WorldPlace,
)

__all__ = [
    "BANNER_COLOURS",
    "CONTINENT_PRIORITY",
    "GLYPHS",
    "ORACLE_MODES",
    "PALETTES",
    "SIGN_COLOURS",
    "SIGN_SHAPES",
    "TINT_GREEN",
    "TINT_LOW",
    "TINT_SPAN",
    "ClueRates",
    "Clues",
    "OraclePrediction",
    "SyntheticData",
    "SyntheticWorld",
    "WorldPlace",
    "ceiling_report",
    "decode_tint",
    "describe",
    "draw_spread_photos",
    "generate_world",
    "iter_samples",
    "oracle_predict",
    "render_image",
    "save_world",
    "tint_direction",
    "tint_of",
]
