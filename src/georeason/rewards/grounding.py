"""Grounders: which of the entity phrases a reasoning names can be seen in the image.

GLOBE's MP16-Reason drops samples whose reasoning names things that are not in the
photo (the paper checks the named entities with a segmentation model). A *grounder*
does that check here, for distillation (:mod:`georeason.pipelines.distill.filters`:
the drop reason ``entity not in the image``) and for the grounded visual reward
(:class:`georeason.rewards.globe.VisualPrecision`). Given images and, per image, the
entity phrases (:func:`~georeason.rewards.entities.extract_entities`), it returns one
score in [0, 1] per phrase; a phrase is *visible* when its score reaches a threshold
(:func:`default_threshold` unless the caller sets one).

Three grounders, chosen by a spec string (:func:`make_grounder`):

- ``text`` — the offline fallback and the default: it never sees the image and
  accepts a phrase when the text heuristic (:func:`extract_entities`) reads it as a
  visual entity, which is what distillation assumed before grounders existed (every
  phrase the extractor found passes, so the default drops nothing);
- ``clues:WORLD_DIR`` — exact, for the synthetic world: the clue records
  (``world.json``'s ``drawn_clues``, written by
  :func:`georeason.datasets.synthetic.save_world`) say which clues were drawn in each
  photo; a phrase is visible when it names one of them;
- ``detector:MODEL`` — a transformers zero-shot object detector by hub ID or local
  folder: OWL-ViT / OWLv2 (``google/owlv2-base-patch16-ensemble``; score = the best
  box's sigmoid score for the phrase's query) or Grounding DINO
  (``IDEA-Research/grounding-dino-tiny``; score = the best box's sigmoid score over
  the phrase's tokens). Offline, a hub ID that is not cached fails at once with how to
  get it (:func:`georeason.models.loading.resolve_model`), never a hang.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from georeason.rewards.batch import mentions
from georeason.rewards.entities import extract_entities

GROUNDER_KINDS = ("text", "clues", "detector")
#: a phrase is visible at or above this score, per grounder kind; the text and clue
#: grounders score 0 or 1, and 0.1 is the detection threshold of OWL-ViT's examples
_THRESHOLDS = {"text": 0.5, "clues": 0.5, "detector": 0.1}
_DETECTOR_TYPES = ("owlvit", "owlv2", "grounding-dino", "mm-grounding-dino")

__all__ = [
    "GROUNDER_KINDS",
    "ClueGrounder",
    "DetectorGrounder",
    "Grounder",
    "GroundingError",
    "TextGrounder",
    "default_threshold",
    "make_grounder",
]


class GroundingError(ValueError):
    """A grounder cannot be made or cannot ground what it was given."""


class Grounder:
    """Scores entity phrases against images: ``grounder(images, phrases, ids)``.

    ``images[i]`` is the i-th image (PIL, path, bytes, a ``datasets`` Image dict or a
    list whose first item is one; None for grounders that do not look), ``phrases[i]``
    its phrases, ``ids[i]`` its id (the clue grounder looks photos up by id). Returns
    ``scores[i][j]`` in [0, 1] for ``phrases[i][j]``.
    """

    kind: str = ""
    spec: str = ""  # what made it: stored beside its scores, so a rerun knows whose they are
    needs_image: bool = True

    @property
    def threshold(self) -> float:
        return _THRESHOLDS[self.kind]

    def __call__(
        self,
        images: Sequence[Any] | None,
        phrases: Sequence[Sequence[str]],
        ids: Sequence[str] | None = None,
    ) -> list[list[float]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def close(self) -> None:
        """Free what the grounder holds (a detector's model)."""


def _check_lengths(images: Sequence[Any] | None, phrases: Sequence[Any], ids: Sequence[Any] | None) -> None:
    for name, seq in (("images", images), ("ids", ids)):
        if seq is not None and len(seq) != len(phrases):
            raise GroundingError(f"{len(seq)} {name} for {len(phrases)} phrase lists")


class TextGrounder(Grounder):
    """The offline fallback: 1 when :func:`extract_entities` reads the phrase as a visual
    entity (a clue-lexicon noun phrase, or a capitalised name that is not a gazetteer
    place), else 0. It cannot see the image: a phrase the extractor took from a
    reasoning always passes, so it rejects only conclusions and vague words ("Paris",
    "the view") given as entities from elsewhere.

    >>> TextGrounder()(None, [["red circle sign", "Paris", "Grand Bazaar"]])
    [[1.0, 0.0, 1.0]]
    """

    kind = "text"
    spec = "text"
    needs_image = False

    def __call__(
        self,
        images: Sequence[Any] | None,
        phrases: Sequence[Sequence[str]],
        ids: Sequence[str] | None = None,
    ) -> list[list[float]]:
        _check_lengths(images, phrases, ids)
        # "see" (a stop word) in front: the phrase is not at a sentence start, where a
        # lone capitalised word does not count as a name
        return [
            [
                1.0 if p.casefold() in {e.casefold() for e in extract_entities(f"see {p}.")} else 0.0
                for p in row
            ]
            for row in phrases
        ]


class ClueGrounder(Grounder):
    """The synthetic world's clue records: a phrase is visible when it names a clue drawn in the photo.

    ``drawn`` maps each photo's id to its drawn clue phrases (the palette, and the
    banner, sign, landmark and road tint that are legible: what
    :func:`georeason.datasets.synthetic.describe` names). A phrase names a drawn clue
    when either contains the other at word boundaries (singular or plural, case and
    accents ignored, :func:`~georeason.rewards.batch.mentions`): "banner" and "blue-white-red
    banner" name the drawn "vertical blue-white-red banner"; "red triangle sign" does
    not name "red circle sign", nor "palm trees" anything (the world draws nothing else).

    >>> g = ClueGrounder({"p1": ["green meadow", "red circle sign"], "p2": []})
    >>> g(None, [["red circle sign", "sign", "red triangle sign"], ["green meadow"]], ids=["p1", "p2"])
    [[1.0, 1.0, 0.0], [0.0]]
    """

    kind = "clues"
    needs_image = False  # the records say what is drawn; the pixels are not read

    def __init__(self, drawn: Mapping[str, Sequence[str]], *, spec: str = "clues") -> None:
        self.drawn = {str(k): [str(p) for p in v] for k, v in drawn.items()}
        self.spec = spec

    @classmethod
    def from_world(cls, world_dir: str | os.PathLike[str]) -> ClueGrounder:
        """The clue records of a world folder written by ``georeason synth`` / ``save_world``."""
        path = Path(world_dir).expanduser() / "world.json"
        if not path.is_file():
            raise GroundingError(f"{path} does not exist: give the folder a synthetic world was saved to")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if "drawn_clues" not in meta:
            raise GroundingError(
                f"{path} holds no drawn_clues (a world saved before clue grounding): generate it again "
                "with `georeason synth` or georeason.datasets.synthetic.generate_world(out_dir=...)"
            )
        return cls(meta["drawn_clues"], spec=f"clues:{os.fspath(world_dir)}")

    def visible(self, photo_id: str, phrase: str) -> bool:
        if photo_id not in self.drawn:
            raise GroundingError(
                f"photo {photo_id!r} is not in the clue records ({self.spec}): the clue grounder knows only "
                "the photos of the synthetic world it was made from"
            )
        return any(mentions([phrase], d)[0] or mentions([d], phrase)[0] for d in self.drawn[photo_id])

    def __call__(
        self,
        images: Sequence[Any] | None,
        phrases: Sequence[Sequence[str]],
        ids: Sequence[str] | None = None,
    ) -> list[list[float]]:
        _check_lengths(images, phrases, ids)
        if ids is None:
            raise GroundingError("the clue grounder needs the photos' ids (it looks their clue records up)")
        return [
            [1.0 if self.visible(str(i), p) else 0.0 for p in row]
            for i, row in zip(ids, phrases, strict=True)
        ]


def _pil(image: Any) -> Any:
    """An image as RGB PIL from the forms a dataset or a caller gives."""
    from georeason.images import load_image

    if isinstance(image, (list, tuple)):
        image = image[0] if image else None
    if isinstance(image, Mapping):
        image = image.get("bytes") or image.get("path")
    if image is None:
        raise GroundingError("no image to ground the phrases in")
    return load_image(image)


class DetectorGrounder(Grounder):
    """A transformers zero-shot object detector (OWL-ViT, OWLv2, Grounding DINO) as a grounder.

    A phrase's score is the highest sigmoid score any predicted box gives it: OWL's
    per-query logits, or Grounding DINO's logits over the phrase's tokens (phrases are
    written as its ``"a. b. c."`` prompt, a token span each). Images go through the
    model ``batch_size`` at a time; an image without phrases is not run.
    """

    kind = "detector"

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 8) -> None:
        from georeason.models.loading import resolve_model

        if batch_size < 1:
            raise GroundingError(f"batch_size must be >= 1, got {batch_size}")
        path = resolve_model(model)  # offline and not cached: ModelNotFoundError now, not a hang
        import torch
        from transformers import AutoConfig, AutoModelForZeroShotObjectDetection, AutoProcessor

        model_type = AutoConfig.from_pretrained(path).model_type
        if model_type not in _DETECTOR_TYPES:
            raise GroundingError(
                f"{model} is a {model_type!r} model; the detector grounder takes {', '.join(_DETECTOR_TYPES)}"
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.spec = f"detector:{model}"
        self.model_type = model_type
        self.batch_size = batch_size
        self.device = device
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModelForZeroShotObjectDetection.from_pretrained(path).to(device).eval()

    def close(self) -> None:
        self.model = None

    def __call__(
        self,
        images: Sequence[Any] | None,
        phrases: Sequence[Sequence[str]],
        ids: Sequence[str] | None = None,
    ) -> list[list[float]]:
        _check_lengths(images, phrases, ids)
        out: list[list[float]] = [[] for _ in phrases]
        todo = [i for i, row in enumerate(phrases) if row]
        if todo and images is None:
            raise GroundingError("the detector grounder needs the images")
        assert images is not None or not todo
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            imgs = [_pil(images[i]) for i in chunk]  # type: ignore[index]
            rows = [[str(p) for p in phrases[i]] for i in chunk]
            if self.model_type in ("owlvit", "owlv2"):  # resized to one square: any sizes batch alike
                groups = [list(range(len(chunk)))]
            else:  # Grounding DINO pads unequal images, which moves its scores: batch equal sizes only
                by_size: dict[tuple[int, int], list[int]] = {}
                for k, im in enumerate(imgs):
                    by_size.setdefault(im.size, []).append(k)
                groups = list(by_size.values())
            for group in groups:
                run = self._owl if self.model_type in ("owlvit", "owlv2") else self._dino
                scores = run([imgs[k] for k in group], [rows[k] for k in group])
                for k, sc in zip(group, scores, strict=True):
                    out[chunk[k]] = sc
        return out

    def _owl(self, imgs: list[Any], rows: list[list[str]]) -> list[list[float]]:
        import torch

        # the processor pads every image's queries to the longest list, and each query to the
        # text model's length (what OWL's own pipeline does: the images' queries are one tensor)
        inputs = self.processor(
            text=rows, images=imgs, return_tensors="pt", padding="max_length", truncation=True
        )
        with torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits  # (images, boxes, queries)
        best = torch.sigmoid(logits.float()).amax(dim=1).cpu()
        return [best[k, : len(row)].tolist() for k, row in enumerate(rows)]

    def _dino(self, imgs: list[Any], rows: list[list[str]]) -> list[list[float]]:
        import torch

        # "." separates phrases in Grounding DINO's prompt: none may hold one
        clean = [[" ".join(p.replace(".", " ").split()).lower() or "thing" for p in row] for row in rows]
        text = [". ".join(row) + "." for row in clean]
        inputs = self.processor(images=imgs, text=text, return_tensors="pt", padding=True)
        with torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits  # (images, boxes, text tokens)
        probs = torch.sigmoid(logits.float()).amax(dim=1).cpu()  # best box per token
        tok = self.processor.tokenizer
        dot = tok.convert_tokens_to_ids(".")
        special = set(tok.all_special_ids)
        out = []
        for k, row in enumerate(clean):
            spans: list[list[int]] = [[]]
            for pos, t in enumerate(inputs["input_ids"][k].tolist()):
                if t == dot:
                    spans.append([])
                elif t not in special:
                    spans[-1].append(pos)
            out.append([float(probs[k, spans[j]].max()) if spans[j] else 0.0 for j in range(len(row))])
        return out


def default_threshold(spec: str) -> float:
    """The visibility threshold of a grounder spec's kind when the caller sets none."""
    return _THRESHOLDS[_kind(spec)]


def _kind(spec: str) -> str:
    kind = spec.strip().partition(":")[0].strip().lower()
    if kind not in GROUNDER_KINDS:
        raise GroundingError(
            f"unknown grounder {spec!r}: use text, clues:WORLD_DIR (the synthetic world's clue records) "
            "or detector:MODEL (an OWL-ViT / OWLv2 / Grounding DINO hub ID or folder)"
        )
    return kind


def make_grounder(spec: str | Grounder, *, device: str = "auto", batch_size: int = 8) -> Grounder:
    """A grounder from its spec: ``text``, ``clues:WORLD_DIR`` or ``detector:MODEL`` (a ready one is returned as is).

    >>> make_grounder("text").spec
    'text'
    """
    if isinstance(spec, Grounder):
        return spec
    kind = _kind(spec)
    arg = spec.strip().partition(":")[2].strip()
    if kind == "text":
        if arg:
            raise GroundingError(f"the text grounder takes no argument, got {spec!r}")
        return TextGrounder()
    if not arg:
        raise GroundingError(
            f"{spec!r}: give the {'world folder' if kind == 'clues' else 'model'} after '{kind}:'"
        )
    if kind == "clues":
        return ClueGrounder.from_world(arg)
    return DetectorGrounder(arg, device=device, batch_size=batch_size)
