r"""GLOBE's answer rewards (arXiv 2506.14674): accuracy, visual grounding, format.

The locatability reward, which needs a judge model, lives in
:mod:`georeason.rewards.judges`.

Where GLOBE's released plugin differs we follow the paper: the plugin matches names
by substring with a 0.7 length ratio ("Niger" = "Nigeria", 5/7 ≥ 0.7; "USA" never
matches "United States") — we compare gazetteer keys with aliases and ISO codes; its
visual reward counts lower-cased substrings ("bus" is found in "business"; "city" is
never found in "cities") and scores 0 when a sample has no entities — we match whole
words in singular or plural and return None (nothing to score); it searches
``completion.split("</think>")[0]``, so a completion without ``</think>`` is searched
whole, its answer included — we search the reasoning only (the paper's "entities
mentioned in the reasoning"), with the plugin's fallback as an option
(:class:`GlobeVisual`, ``whole_text_if_untagged``); its locatability judge errors score
a silent 0 — ours are logged and give None.

Beside GLOBE's visual reward (recall: the share of the annotated entities the
reasoning mentions) sits our precision form, :class:`VisualPrecision`
(``visual_precision``): the share of the entities the reasoning *names* that a
grounder (:mod:`georeason.rewards.grounding`) sees in the image, so naming a clue
that is not there costs reward — recall alone cannot see it.

Completions are parsed with the ``globe`` protocol
(``<think>…</think><answer>country: X\ncity: Y</answer>``) by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from georeason.protocols.parsing import MAX_COMPLETION_CHARS
from georeason.rewards.batch import (
    cities_match,
    column,
    countries_match,
    entity_list,
    mentions,
    parse_completions,
    true_places,
)
from georeason.rewards.formulas import GLOBE_ALPHA, globe_accuracy_from_matches
from georeason.types import Prediction

__all__ = [
    "GlobeAccuracy",
    "GlobeFormat",
    "GlobeVisual",
    "VisualPrecision",
    "globe_accuracy",
    "globe_format",
    "globe_visual",
    "make_globe_accuracy",
    "make_globe_format",
    "make_globe_visual",
    "make_visual_precision",
]


def _check_protocol(protocol: str) -> None:
    from georeason.protocols import get_protocol

    get_protocol(protocol)


class GlobeAccuracy:
    r"""GLOBE's accuracy reward, TRL signature, with configurable α.

    .. math:: R_{geo} = \mathbb{1}[\text{country ok}]\cdot(\alpha\,\mathbb{1}[\text{city ok}] + 1 - \alpha)

    Truth comes from the columns ``country_code``/``country`` and ``city``; where they are
    missing and ``fill_from_coordinates`` is on, from reverse geocoding ``lat``/``lon``.
    Countries compare by ISO code through the gazetteer's aliases ("USA" = "United States",
    "Ivory Coast" = "Côte d'Ivoire"); cities by normalised name and GeoNames alternate
    names within the true country ("München" = "Munich"). Rows without a true country or
    city score None. Range [0, 1].

    >>> acc = GlobeAccuracy(alpha=0.5, name="globe_accuracy_a05")
    >>> acc(["<think>.</think><answer>country: France\ncity: Lyon</answer>"], country=["France"], city=["Paris"])
    [0.5]
    """

    def __init__(
        self,
        alpha: float = GLOBE_ALPHA,
        *,
        protocol: str = "globe",
        fill_from_coordinates: bool = True,
        name: str = "globe_accuracy",
    ) -> None:
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1] (GLOBE uses 0.8), got {alpha!r}")
        _check_protocol(protocol)
        self.alpha = float(alpha)
        self.protocol = protocol
        self.fill_from_coordinates = fill_from_coordinates
        self.__name__ = name

    def __repr__(self) -> str:
        return f"GlobeAccuracy(alpha={self.alpha}, protocol={self.protocol!r}, name={self.__name__!r})"

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        preds = parse_completions(completions, self.protocol)
        truths = true_places(
            columns,
            n,
            self.__name__,
            fill_from_coordinates=self.fill_from_coordinates,
            levels=("country", "city"),
        )
        out: list[float | None] = []
        for pred, truth in zip(preds, truths, strict=True):
            if not truth.has_country or truth.city is None:
                out.append(None)
                continue
            country_ok = countries_match(pred, truth)
            city_ok = country_ok and cities_match(pred.city, truth.city, truth.country_code)
            out.append(globe_accuracy_from_matches(country_ok, city_ok, self.alpha))
        return out


class GlobeVisual:
    r"""GLOBE's visual-grounding reward: the share of the sample's entities the reasoning mentions.

    .. math:: R_{vis} = \frac{|\{e \in E : e \text{ mentioned in the reasoning}\}|}{|E|}

    ``E`` is the row's ``entities`` column (strings, or dicts with ``text`` as in
    MP16-Reason), deduplicated after normalisation. Matching
    (:func:`~georeason.rewards.batch.mentions`) is case-, accent- and
    punctuation-insensitive, at word boundaries ("bus" is not in "business", "tree" not
    in "street"), with the entity's last word singular or plural ("two buses" mentions
    "bus") and its hyphens optional ("tuk tuk" = "tuk-tuk"). No entities -> None.
    Range [0, 1].

    What is searched — the reasoning, as the paper defines ``R_vis``, never the answer:

    - a completion with a ``<think>`` or ``</think>`` tag: the parser's ``reasoning``
      (the ``<think>`` block). An empty block mentions nothing: ``<think></think>`` then
      an answer naming "Eiffel Tower" scores 0;
    - a completion without any think tag, under a protocol that asks for the reasoning
      in ``<think>`` (``globe``, ``geor``: ``AnswerProtocol.reasoning_in_think_tags``):
      nothing (0.0) by default. With ``whole_text_if_untagged=True`` the whole completion
      is searched instead, as GLOBE's released plugin does (it searches
      ``completion.split("</think>")[0]``; the plugin also searches everything when only
      ``<think>`` is there, which this option does not);
    - under a protocol whose reasoning is free text (``cot``): the parser's ``reasoning``.

    >>> vis = GlobeVisual(whole_text_if_untagged=True, name="globe_visual_lenient")
    >>> vis(["<think></think><answer>country: France\ncity: Paris</answer>", "Two trams in Paris."],
    ...     entities=[["tram"], ["tram"]])
    [0.0, 1.0]
    """

    def __init__(
        self, *, protocol: str = "globe", whole_text_if_untagged: bool = False, name: str = "globe_visual"
    ) -> None:
        from georeason.protocols import get_protocol

        self.protocol = protocol
        self.whole_text_if_untagged = bool(whole_text_if_untagged)
        self._think_only = get_protocol(protocol).reasoning_in_think_tags
        self.__name__ = name

    def __repr__(self) -> str:
        return (
            f"GlobeVisual(protocol={self.protocol!r}, whole_text_if_untagged={self.whole_text_if_untagged}, "
            f"name={self.__name__!r})"
        )

    def searched_text(self, pred: Prediction) -> str:
        """The text whose mentions count for one parsed completion (see the class docstring)."""
        if pred.think_tag or not self._think_only:
            return pred.reasoning
        return pred.raw[:MAX_COMPLETION_CHARS] if self.whole_text_if_untagged else ""

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        entities = column(columns, "entities", n)
        if entities is None:
            raise KeyError(
                f"{self.__name__} needs the dataset column 'entities' (the visual clues annotated per image)"
            )
        preds = parse_completions(completions, self.protocol)
        out: list[float | None] = []
        for pred, ents in zip(preds, entities, strict=True):
            hit, total = mentions(entity_list(ents), self.searched_text(pred))
            out.append(hit / total if total else None)
        return out


class VisualPrecision(GlobeVisual):
    r"""Ours, GLOBE's visual reward in precision form: the share of the entities the
    reasoning names that the image shows.

    .. math:: R_{vis}^{prec} = \frac{|\{e \in N : g(\text{image}, e) \ge \tau\}|}{|N|}

    ``N`` is what :func:`~georeason.rewards.entities.extract_entities` finds in the
    searched text (the reasoning, as for :class:`GlobeVisual`), ``g`` a grounder
    (``text``, ``clues:WORLD_DIR`` or ``detector:MODEL``, :func:`~georeason.rewards.grounding.make_grounder`,
    or a :class:`~georeason.rewards.grounding.Grounder`), ``τ`` its threshold
    (``threshold``, default the grounder's). GLOBE's ``R_vis`` (recall over the
    annotated entities) rewards naming what was annotated and never sees a clue that
    was made up; this form penalises it. The two can be used together. The images come
    from the column ``images`` or ``image``, photo ids from ``id`` (the clue grounder
    looks photos up by id). Nothing named -> None. Range [0, 1].

    >>> from georeason.rewards.grounding import ClueGrounder
    >>> prec = VisualPrecision(ClueGrounder({"p": ["green meadow", "red circle sign"]}))
    >>> prec(["<think>A red circle sign and palm trees.</think><answer>country: France\ncity: Paris</answer>",
    ...       "<think>No clue.</think><answer>country: France\ncity: Paris</answer>"], id=["p", "p"])
    [0.5, None]
    """

    def __init__(
        self,
        grounder: Any,
        *,
        threshold: float | None = None,
        protocol: str = "globe",
        whole_text_if_untagged: bool = False,
        device: str = "auto",
        batch_size: int = 8,
        name: str = "visual_precision",
    ) -> None:
        from georeason.rewards.grounding import Grounder, default_threshold

        super().__init__(protocol=protocol, whole_text_if_untagged=whole_text_if_untagged, name=name)
        if not isinstance(grounder, (str, Grounder)):
            raise TypeError(f"grounder must be a spec string or a Grounder, got {type(grounder).__name__}")
        default = grounder.threshold if isinstance(grounder, Grounder) else default_threshold(grounder)
        self.threshold = default if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        self.grounder_spec = grounder if isinstance(grounder, str) else grounder.spec
        self.device = device
        self.batch_size = batch_size
        # a spec is made into its grounder at the first call (a detector loads a model):
        # the reward stays cheap to build and to pickle into dataloader workers
        self._grounder: Grounder | None = grounder if isinstance(grounder, Grounder) else None

    def __getstate__(self) -> dict[str, Any]:
        from georeason.rewards.grounding import DetectorGrounder

        state = dict(self.__dict__)
        if isinstance(state["_grounder"], DetectorGrounder):
            state["_grounder"] = None  # a model is not shipped: made again from the spec where unpickled
        return state

    def __repr__(self) -> str:
        return (
            f"VisualPrecision(grounder={self.grounder_spec!r}, threshold={self.threshold}, "
            f"protocol={self.protocol!r}, name={self.__name__!r})"
        )

    def grounder(self) -> Any:
        """The grounder, made from its spec on first use."""
        if self._grounder is None:
            from georeason.rewards.grounding import make_grounder

            self._grounder = make_grounder(self.grounder_spec, device=self.device, batch_size=self.batch_size)
        return self._grounder

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        from georeason.rewards.entities import extract_entities

        n = len(completions)
        preds = parse_completions(completions, self.protocol)
        named = [extract_entities(self.searched_text(p)) for p in preds]
        if not any(named):
            return [None] * n
        g = self.grounder()
        images = column(columns, "images", n)
        if images is None:
            images = column(columns, "image", n)
        if g.needs_image and images is None:
            raise KeyError(
                f"{self.__name__} needs the images (dataset column 'image' or 'images') to ground in"
            )
        ids = column(columns, "id", n)
        scores = g(
            images if g.needs_image else None,
            named,
            [str(i) for i in ids] if ids is not None else None,
        )
        return [sum(x >= self.threshold for x in row) / len(row) if row else None for row in scores]


class GlobeFormat:
    r"""GLOBE's format reward: 1 iff ``<think>…</think><answer>…</answer>`` and nothing after.

    Read from the ``globe`` parser's ``format_ok``: one ``<think>`` block first, then one
    ``<answer>`` block, only whitespace between and after. The parser also asks for a
    non-empty ``country:`` and ``city:`` line, which GLOBE's released regex
    (``^<think>.*?</think>\s*<answer>.*?</answer>(?![\s\S])``) does not check.
    Range {0, 1}; never None.
    """

    def __init__(self, *, protocol: str = "globe", name: str = "globe_format") -> None:
        _check_protocol(protocol)
        self.protocol = protocol
        self.__name__ = name

    def __repr__(self) -> str:
        return f"GlobeFormat(protocol={self.protocol!r}, name={self.__name__!r})"

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        return [1.0 if p.format_ok else 0.0 for p in parse_completions(completions, self.protocol)]


_GLOBE_ACCURACY = GlobeAccuracy()
_GLOBE_VISUAL = GlobeVisual()
_GLOBE_FORMAT = GlobeFormat()


def globe_accuracy(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""GLOBE's accuracy reward with α = 0.8 (arXiv 2506.14674).

    .. math:: R_{geo} = \mathbb{1}[\text{country ok}]\cdot(0.8\,\mathbb{1}[\text{city ok}] + 0.2)

    1 for the right country and city, 0.2 for the right country only, 0 otherwise. Names
    go through the gazetteer's aliases and accents, never substrings. Truth: columns
    ``country_code``/``country`` and ``city`` (or reverse-geocoded ``lat``/``lon``).
    Missing truth -> None. Range [0, 1]. See :func:`make_globe_accuracy` for another α.

    >>> ans = lambda country, city: f"<think>...</think><answer>country: {country}\ncity: {city}</answer>"
    >>> globe_accuracy([ans("USA", "NYC"), ans("United States", "Boston"), ans("Canada", "New York")],
    ...                country=["United States"] * 3, city=["New York City"] * 3)
    [1.0, 0.2, 0.0]
    >>> globe_accuracy([ans("Ivory Coast", "Abidjan"), ans("Germany", "München")],
    ...                country_code=["CI", "DE"], city=["Abidjan", "Munich"])
    [1.0, 1.0]
    """
    return _GLOBE_ACCURACY(completions, **columns)


def globe_visual(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""GLOBE's visual-grounding reward: share of the row's ``entities`` the reasoning mentions.

    .. math:: R_{vis} = |\{e \in E : e \text{ in reasoning}\}| \,/\, |E|

    Whole words in singular or plural, case- and accent-insensitive; only the ``<think>``
    reasoning counts (an empty or missing one mentions nothing, whatever the answer
    says); no entities -> None. Range [0, 1]. See :class:`GlobeVisual`.

    >>> done = "<think>Trams and the Café sign; a Tower in the distance.</think><answer>country: France\ncity: Paris</answer>"
    >>> globe_visual([done, done, done], entities=[["tram", "cafe"], [{"text": "Eiffel Tower"}, {"text": "tram"}], []])
    [1.0, 0.5, None]
    >>> globe_visual(["<think></think><answer>country: France\ncity: Paris near the Eiffel Tower</answer>"],
    ...              entities=[["Eiffel Tower"]])
    [0.0]
    """
    return _GLOBE_VISUAL(completions, **columns)


def globe_format(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    r"""GLOBE's format reward: 1 iff ``<think>…</think><answer>…</answer>`` and nothing after, else 0.

    >>> globe_format(["<think>Snow, pines.</think><answer>country: Norway\ncity: Tromsø</answer>",
    ...               "<answer>country: Norway</answer>",
    ...               "<think>.</think><answer>country: Norway\ncity: Oslo</answer> Hope this helps!"])
    [1.0, 0.0, 0.0]
    """
    return _GLOBE_FORMAT(completions, **columns)


def make_globe_visual(
    *, protocol: str = "globe", whole_text_if_untagged: bool = False, name: str = "globe_visual"
) -> GlobeVisual:
    r"""GLOBE's visual reward; ``whole_text_if_untagged`` searches a completion without any think
    tag whole, as GLOBE's released plugin does (the default, the paper's, searches the reasoning only).

    >>> lenient = make_globe_visual(whole_text_if_untagged=True, name="globe_visual_plugin")
    >>> lenient(["Palm trees by the sea."], entities=[["palm tree", "sea", "bus"]])
    [0.6666666666666666]
    """
    return GlobeVisual(protocol=protocol, whole_text_if_untagged=whole_text_if_untagged, name=name)


def make_visual_precision(
    grounder: Any = None,
    *,
    threshold: float | None = None,
    protocol: str = "globe",
    whole_text_if_untagged: bool = False,
    device: str = "auto",
    batch_size: int = 8,
    name: str = "visual_precision",
) -> VisualPrecision:
    r"""Our precision form of GLOBE's visual reward (:class:`VisualPrecision`) with a grounder:
    ``text``, ``clues:WORLD_DIR`` or ``detector:MODEL`` (OWL-ViT / OWLv2 / Grounding DINO).

    >>> make_visual_precision("text", name="visual_precision_text").threshold
    0.5
    """
    if grounder is None:
        raise ValueError(
            "visual_precision needs a grounder: 'detector:MODEL' (an OWL-ViT / OWLv2 / Grounding DINO hub ID or "
            "folder), 'clues:WORLD_DIR' (the synthetic world's clue records) or 'text' (offline heuristic, "
            "cannot see the image); see georeason.rewards.grounding"
        )
    return VisualPrecision(
        grounder,
        threshold=threshold,
        protocol=protocol,
        whole_text_if_untagged=whole_text_if_untagged,
        device=device,
        batch_size=batch_size,
        name=name,
    )


def make_globe_format(*, protocol: str = "globe", name: str = "globe_format") -> GlobeFormat:
    r"""GLOBE's format reward for ``protocol`` answers, logged under ``name``.

    >>> make_globe_format(name="globe_format_2")(["<think>a sign</think><answer>country: France\ncity: Paris</answer>"])
    [1.0]
    """
    return GlobeFormat(protocol=protocol, name=name)


def make_globe_accuracy(
    alpha: float = GLOBE_ALPHA,
    *,
    protocol: str = "globe",
    fill_from_coordinates: bool = True,
    name: str = "globe_accuracy",
) -> GlobeAccuracy:
    r"""GLOBE's accuracy reward with weight ``alpha`` on the city term (the paper uses 0.8).

    >>> strict = make_globe_accuracy(alpha=1.0, name="globe_city_only")
    >>> strict.__name__, strict(["<answer>country: Japan\ncity: Kyoto</answer>"], country=["Japan"], city=["Osaka"])
    ('globe_city_only', [0.0])
    """
    return GlobeAccuracy(alpha, protocol=protocol, fill_from_coordinates=fill_from_coordinates, name=name)
