r"""GLOBE's locatability data: (image, reasoning) -> "yes" / "no", to train the judge behind R_loc.

GLOBE (arXiv 2506.14674) scores each rollout with
:math:`R_{loc} = P(\text{yes}) / (P(\text{yes}) + P(\text{no}))` from a reward model: a VLM
fine-tuned (LoRA) to say whether an image is visually locatable given a location
reasoning. This module builds that model's training data, ``georeason data locatability``:

- **from a distillation run** (``georeason data distill``; its ``records.jsonl`` keeps every
  teacher's completion, its P(yes) judgement and the distance of its answer to the truth):
  one example per (image, teacher completion), labelled by :data:`RULES` (below);
- **from a labelled table** of your own: columns image, reasoning and label (yes/no,
  true/false, 1/0), read through :mod:`georeason.tables` (any of its formats, or a
  ``datasets`` folder), with an optional place column (``place``, or city/country
  columns) for the split.

The label rule (``rule``), per example, from the image's teachers and this teacher's answer:

- ``agree_and_correct`` (default): **yes** when the teachers agree the image is locatable
  (at least ``min_agree`` of those that judged it gave P(yes) >= ``yes_threshold``) *and*
  this teacher's answer landed within ``max_km`` of the truth; **no** when they agree it is
  not locatable *and* the answer missed by more than ``max_km`` (or named no place).
  Anything else (teachers split, a "locatable" image answered wrongly, a "not locatable"
  one answered rightly) is ambiguous and left out, counted by reason. Both signals must
  say the same thing: the judges' opinion and the evidence that the reasoning worked;
- ``verdict``: the teachers' agreed verdict alone (GLOBE's own locatability filter);
- ``correct``: whether this teacher's answer landed within ``max_km`` alone.

The text an example holds (column ``reasoning``) is the teacher's whole completion
(``<think>`` reasoning and ``<answer>``): the reward model is later asked about policy
completions in that same form (:class:`~georeason.rewards.judges.GlobeLocatability`).

The held-out split (``test``) is **by place**: all examples of a place (``place_level``:
city by default, keyed with its admin1 and country) fall in one split, so no city is in
both and the test measures the judge on places it never saw. Class balance
(``balance``) is applied to ``train`` only; ``test`` keeps the natural mix (AUROC does not
depend on it). Counts and balance go to ``OUT/locatability.json`` and the terminal.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("georeason.pipelines")

#: the label rules (see the module docstring)
RULES = ("agree_and_correct", "verdict", "correct")
#: how the train split's classes are balanced
BALANCES = ("upsample", "downsample", "none")
#: the place levels the held-out split can be keyed by
SPLIT_LEVELS = ("country", "admin1", "city")
SUMMARY_FILE = "locatability.json"
_YES = {"yes", "y", "true", "t", "1", "locatable"}
_NO = {"no", "n", "false", "f", "0", "not locatable", "unlocatable"}


class LocatabilityError(ValueError):
    """A source or setting the locatability dataset cannot be built from."""


@dataclass
class LocatabilityConfig:
    """How examples are labelled, split by place and balanced."""

    rule: str = field(
        default="agree_and_correct",
        metadata={
            "help": "Label rule: agree_and_correct (teachers' verdict AND answer within --max-km), verdict, correct."
        },
    )
    max_km: float = field(
        default=25.0,
        metadata={
            "help": "An answer within this many km of the truth counts as correct (D of the label rule)."
        },
    )
    yes_threshold: float = field(
        default=0.5,
        metadata={"help": "A teacher whose P(yes) is at or above this says the image is locatable."},
    )
    min_agree: float = field(
        default=0.66,
        metadata={
            "help": "Share of the judging teachers that must give the same verdict (> 0.5) for it to count."
        },
    )
    balance: str = field(
        default="upsample",
        metadata={
            "help": "Train split's classes: upsample (repeat the rarer), downsample (drop from the commoner), none."
        },
    )
    test_share: float = field(
        default=0.2, metadata={"help": "Share of the examples held out (whole places) as the test split."}
    )
    place_level: str = field(
        default="city",
        metadata={"help": "Held-out split by: city, admin1 or country (no such place in both)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the split and of the balancing draws."})

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise LocatabilityError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.balance not in BALANCES:
            raise LocatabilityError(f"balance must be one of {', '.join(BALANCES)}, got {self.balance!r}")
        if self.place_level not in SPLIT_LEVELS:
            raise LocatabilityError(
                f"place_level must be one of {', '.join(SPLIT_LEVELS)}, got {self.place_level!r}"
            )
        if not (math.isfinite(self.max_km) and self.max_km >= 0):
            raise LocatabilityError(f"max_km must be >= 0, got {self.max_km}")
        if not 0.0 <= self.yes_threshold <= 1.0:
            raise LocatabilityError(f"yes_threshold must be in [0, 1], got {self.yes_threshold}")
        if not 0.5 < self.min_agree <= 1.0:
            raise LocatabilityError(
                f"min_agree must be in (0.5, 1] (a share of the teachers; 0.5 or less lets both verdicts win), "
                f"got {self.min_agree}"
            )
        if not 0.0 <= self.test_share < 1.0:
            raise LocatabilityError(f"test_share must be in [0, 1), got {self.test_share}")


@dataclass
class Example:
    """One labelled example, before it becomes a dataset row."""

    row: int  # the image's row in the source
    image_id: str
    text: str
    label: bool
    place: str
    teacher: str | None = None
    p_yes: float | None = None
    agree_share: float | None = None
    distance_km: float | None = None


# ---------------------------------------------------------------------------
# the label rule
# ---------------------------------------------------------------------------


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def verdict(
    teachers: Sequence[Mapping[str, Any]], config: LocatabilityConfig
) -> tuple[bool | None, float | None]:
    """The teachers' agreed verdict on an image (``True`` locatable, ``False`` not, ``None``
    no agreement or nobody judged) and the share of judging teachers that said yes.

    >>> cfg = LocatabilityConfig()
    >>> verdict([{"p_yes": 0.9}, {"p_yes": 0.8}, {"p_yes": 0.2}], cfg)[0], verdict([{"p_yes": 0.9}, {"p_yes": 0.1}], cfg)[0]
    (True, None)
    """
    votes = [p >= config.yes_threshold for p in (_float(t.get("p_yes")) for t in teachers) if p is not None]
    if not votes:
        return None, None
    share = sum(votes) / len(votes)
    if share >= config.min_agree:
        return True, share
    if 1.0 - share >= config.min_agree:
        return False, share
    return None, share


def label_record(
    record: Mapping[str, Any], config: LocatabilityConfig
) -> tuple[list[tuple[dict[str, Any], bool]], Counter[str]]:
    """The labelled examples of one distillation record: ``([(teacher output, label), ...],
    reasons the other outputs were left out)``, by ``config.rule``."""
    dropped: Counter[str] = Counter()
    if record.get("image_error"):
        dropped["unreadable image"] += 1
        return [], dropped
    teachers = list(record.get("teachers") or [])
    agreed, _ = verdict(teachers, config)
    out: list[tuple[dict[str, Any], bool]] = []
    for t in teachers:
        text = t.get("completion")
        if not isinstance(text, str) or not text.strip():
            dropped["teacher gave no completion"] += 1
            continue
        d = _float(t.get("distance_km"))
        correct = d is not None and d <= config.max_km
        label: bool | None
        if config.rule == "correct":
            label = correct
        elif agreed is None:
            label = None
            dropped["teachers do not agree on locatability"] += 1
        elif config.rule == "verdict":
            label = agreed
        elif agreed and not correct:
            label = None
            dropped[f"judged locatable, answer off by more than {config.max_km:g} km"] += 1
        elif not agreed and correct:
            label = None
            dropped[f"judged not locatable, answer within {config.max_km:g} km"] += 1
        else:
            label = agreed
        if label is not None:
            out.append((t, label))
    return out, dropped


def parse_label(value: Any) -> bool | None:
    """A yes/no cell: yes/no, true/false, 1/0 (any case), a bool; None when it is neither.

    >>> parse_label("Yes"), parse_label(0), parse_label("maybe")
    (True, False, None)
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if value is not None else ""
    if text in _YES:
        return True
    if text in _NO:
        return False
    return None


# ---------------------------------------------------------------------------
# the split and the balance
# ---------------------------------------------------------------------------


def place_key(truth: Mapping[str, Any], level: str) -> str | None:
    """The place an image belongs to at ``level`` (its country, admin1 and city names down to it),
    or None when the labels do not say."""
    parts = []
    for k in ("country_code", "admin1", "city")[: SPLIT_LEVELS.index(level) + 1]:
        v = truth.get(k) or (truth.get("country") if k == "country_code" else None)
        if v in (None, ""):
            return None
        parts.append(str(v).strip().lower())
    return "/".join(parts)


def split_by_place(places: Sequence[str], test_share: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train indices, test indices)``: whole places drawn at random into the test split until
    it holds ``test_share`` of the examples; no place is in both."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(places):
        groups.setdefault(p, []).append(i)
    if test_share <= 0:
        return list(range(len(places))), []
    if len(groups) < 2:
        raise LocatabilityError(
            f"all {len(places)} examples are of one place: nothing can be held out by place "
            "(use a finer place_level, or --test-share 0)"
        )
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    target = test_share * len(places)
    test: list[int] = []
    for k in order:
        if len(test) >= target:
            break
        if len(test) + len(groups[keys[k]]) >= len(places):
            continue  # keep at least one place for training
        test.extend(groups[keys[k]])
    chosen = set(test)
    return [i for i in range(len(places)) if i not in chosen], sorted(test)


def balance_indices(indices: Sequence[int], labels: Sequence[bool], how: str, seed: int) -> list[int]:
    """``indices`` with the classes evened: ``upsample`` repeats rows of the rarer class (drawn
    with replacement), ``downsample`` keeps a random subset of the commoner, ``none`` as is.
    A split with one class only is left as is."""
    if how == "none":
        return list(indices)
    rng = np.random.default_rng(seed)
    yes = [i for i in indices if labels[i]]
    no = [i for i in indices if not labels[i]]
    if not yes or not no:
        return list(indices)
    small, big = (yes, no) if len(yes) < len(no) else (no, yes)
    if how == "upsample":
        extra = (
            rng.choice(small, size=len(big) - len(small), replace=True).tolist()
            if len(big) > len(small)
            else []
        )
        out = list(indices) + [int(i) for i in extra]
    else:
        keep = set(rng.choice(big, size=len(small), replace=False).tolist())
        out = [i for i in indices if i in keep or i in small]
    return sorted(out)


# ---------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------


@dataclass
class LocatabilitySummary:
    """What :func:`build_locatability_dataset` wrote: counts per split and label, what was left out."""

    out_dir: Path
    source: str
    kind: str  # "distill" or "table"
    n_images: int
    n_candidates: int
    n_examples: int
    dropped: dict[str, int]
    splits: dict[str, dict[str, int]]
    places: dict[str, int]
    config: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


def _from_distill_run(
    run: Path,
    config: LocatabilityConfig,
    *,
    split: str,
    image_root: str | os.PathLike[str] | None,
    id_col: str | None,
    image_col: str | None,
) -> tuple[Any, list[Example], Counter[str], int]:
    from georeason.pipelines.distill import load_input
    from georeason.pipelines.distill.run import RECORDS_FILE
    from georeason.runs import RUN_FILE, read_records

    info = json.loads((run / RUN_FILE).read_text(encoding="utf-8")) if (run / RUN_FILE).is_file() else {}
    src = (info.get("identity") or {}).get("input")
    if not src:
        raise LocatabilityError(f"{run / RUN_FILE} does not name the distillation's input images")
    records, _ = read_records(run / RECORDS_FILE)
    data = load_input(src, split=split, id_col=id_col, image_col=image_col, image_root=image_root)
    row_of = {d: i for i, d in enumerate(data.ids)}
    examples: list[Example] = []
    dropped: Counter[str] = Counter()
    missing = [str(r.get("id")) for r in records if str(r.get("id")) not in row_of]
    if missing:
        raise LocatabilityError(
            f"{len(missing)} record ids of {run} are not in split {split!r} of {src} (e.g. {missing[0]!r}): "
            "give the --split (and --id-col) the distillation read"
        )
    for rec in records:
        i = row_of[str(rec["id"])]
        truth = data.truth[i]
        place = place_key(truth, config.place_level) or f"image:{rec['id']}"
        labelled, why = label_record(rec, config)
        dropped.update(why)
        agreed_share = verdict(rec.get("teachers") or [], config)[1]
        seen: set[str] = set()
        for t, label in labelled:
            text = str(t["completion"])
            if text in seen:  # two teachers with the same words: one example
                dropped["same text as another teacher's"] += 1
                continue
            seen.add(text)
            examples.append(
                Example(
                    row=i,
                    image_id=str(rec["id"]),
                    text=text,
                    label=label,
                    place=place,
                    teacher=t.get("name"),
                    p_yes=_float(t.get("p_yes")),
                    agree_share=agreed_share,
                    distance_km=_float(t.get("distance_km")),
                )
            )
    image_ds = _image_column(data.dataset, data.image_col, data.path_images, data.resolve)
    return image_ds, examples, dropped, len(records)


def _from_table(
    src: Path,
    config: LocatabilityConfig,
    *,
    split: str,
    image_root: str | os.PathLike[str] | None,
    image_col: str | None,
    reasoning_col: str | None,
    label_col: str | None,
    place_col: str | None,
) -> tuple[Any, list[Example], Counter[str], int]:
    import datasets

    from georeason.tables import (
        ID_COLUMNS,
        IMAGE_COLUMNS,
        LOCATABLE_COLUMNS,
        REASONING_COLUMNS,
        detect_column,
        open_dataset,
        place_columns,
    )

    ds, root, _ = open_dataset(src, split)
    names = list(ds.column_names)
    imc = detect_column(names, image_col, IMAGE_COLUMNS, "image", source=src)
    txc = detect_column(names, reasoning_col, REASONING_COLUMNS, "reasoning", source=src)
    lbc = detect_column(names, label_col, LOCATABLE_COLUMNS, "label", source=src)
    idc = detect_column(names, None, ID_COLUMNS, "id", required=False, source=src)
    plc = detect_column(names, place_col, ("place",), "place", required=False, source=src)
    levels = place_columns(names, exclude=[c for c in (imc, txc, lbc, idc) if c])
    assert imc is not None and txc is not None and lbc is not None
    base = Path(image_root).expanduser() if image_root else root
    path_images = not isinstance(ds.features[imc], datasets.Image)
    cols = ds.select_columns([c for c in names if c != imc]).to_dict()
    examples: list[Example] = []
    dropped: Counter[str] = Counter()
    for i in range(len(ds)):
        image_id = str(cols[idc][i]) if idc else str(i)
        label = parse_label(cols[lbc][i])
        text = cols[txc][i]
        if label is None:
            raise LocatabilityError(
                f"{src}: row {i} ({image_id}) has label {cols[lbc][i]!r} in column {lbc!r}; "
                "labels are yes/no, true/false or 1/0"
            )
        if not isinstance(text, str) or not text.strip():
            dropped["no reasoning text"] += 1
            continue
        if plc:
            place = str(cols[plc][i] or "").strip().lower() or None
        else:
            place = place_key({k: cols[c][i] for k, c in levels.items()}, config.place_level)
        examples.append(
            Example(row=i, image_id=image_id, text=text, label=label, place=place or f"image:{image_id}")
        )
    image_ds = _image_column(ds, imc, path_images, lambda p: Path(p) if Path(p).is_absolute() else base / p)
    return image_ds, examples, dropped, len(ds)


def _image_column(ds: Any, image_col: str, path_images: bool, resolve: Callable[[str], Path]) -> Any:
    """The source's images as a one-column dataset ``image`` (the ``Image`` feature; relative
    paths made absolute so the output folder can live anywhere)."""
    import datasets

    images = ds.select_columns([image_col])
    if image_col != "image":
        images = images.rename_column(image_col, "image")
    if path_images:
        paths = [str(resolve(str(p))) for p in images["image"]]
        images = datasets.Dataset.from_dict({"image": paths})
    return images.cast_column("image", datasets.Image())


def _counts(labels: Sequence[bool]) -> dict[str, int]:
    yes = sum(1 for x in labels if x)
    return {"yes": yes, "no": len(labels) - yes, "total": len(labels)}


def build_locatability_dataset(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: LocatabilityConfig | None = None,
    *,
    split: str = "train",
    image_root: str | os.PathLike[str] | None = None,
    id_col: str | None = None,
    image_col: str | None = None,
    reasoning_col: str | None = None,
    label_col: str | None = None,
    place_col: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = logger.info,
) -> LocatabilitySummary:
    """Build the locatability dataset from a distillation run folder or a labelled table; save
    it to ``out_dir`` (a ``datasets`` DatasetDict, ``train`` and ``test``) with
    ``locatability.json`` (counts, balance, what was left out and why).

    Columns: ``id`` (image id, plus ``:teacher`` for a distillation), ``image_id``, ``image``,
    ``reasoning`` (the text the judge reads), ``label`` ("yes"/"no"), ``locatable`` (bool),
    ``place``, and for a distillation ``teacher``, ``p_yes``, ``agree_share``, ``distance_km``.
    """
    import datasets

    config = config or LocatabilityConfig()
    source = Path(src).expanduser()
    out = Path(out_dir).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"no such distillation run folder or table: {source}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise LocatabilityError(f"{out} exists and is not empty: choose another --out, or pass --overwrite")
    from georeason.pipelines.distill.run import RECORDS_FILE

    kind = "distill" if (source / RECORDS_FILE).is_file() else "table"
    if kind == "distill":
        if any(c is not None for c in (reasoning_col, label_col, place_col)):
            raise LocatabilityError(
                "--reasoning-col, --label-col and --place-col are for a labelled table; a distillation "
                "run's texts and labels come from its records"
            )
        images, examples, dropped, n_images = _from_distill_run(
            source, config, split=split, image_root=image_root, id_col=id_col, image_col=image_col
        )
    elif (
        source.is_dir()
        and not (source / "dataset_dict.json").is_file()
        and not (source / "dataset_info.json").is_file()
    ):
        raise LocatabilityError(
            f"{source} is neither a distillation run (no {RECORDS_FILE}) nor a datasets folder; give a run "
            "folder of `georeason data distill`, or a table with image, reasoning and label columns"
        )
    else:
        images, examples, dropped, n_images = _from_table(
            source,
            config,
            split=split,
            image_root=image_root,
            image_col=image_col,
            reasoning_col=reasoning_col,
            label_col=label_col,
            place_col=place_col,
        )
    n_candidates = len(examples) + sum(dropped.values())
    if not examples:
        reasons = ", ".join(f"{k} ({v})" for k, v in dropped.most_common()) or "the source is empty"
        raise LocatabilityError(f"no example could be labelled from {source}: {reasons}")

    labels = [e.label for e in examples]
    train_idx, test_idx = split_by_place([e.place for e in examples], config.test_share, config.seed)
    natural_train = _counts([labels[i] for i in train_idx])
    train_idx = balance_indices(train_idx, labels, config.balance, config.seed)

    rows = {
        "id": [f"{e.image_id}:{e.teacher}" if e.teacher else e.image_id for e in examples],
        "image_id": [e.image_id for e in examples],
        "reasoning": [e.text for e in examples],
        "label": ["yes" if e.label else "no" for e in examples],
        "locatable": labels,
        "place": [e.place for e in examples],
    }
    if kind == "distill":
        rows |= {
            "teacher": [e.teacher for e in examples],
            "p_yes": [e.p_yes for e in examples],
            "agree_share": [e.agree_share for e in examples],
            "distance_km": [e.distance_km for e in examples],
        }
    feats = {
        k: datasets.Value("bool")
        if k == "locatable"
        else datasets.Value("float64" if k in ("p_yes", "agree_share", "distance_km") else "string")
        for k in rows
    }
    table = datasets.Dataset.from_dict(rows, features=datasets.Features(feats))
    image_part = images.select([e.row for e in examples])
    full = datasets.concatenate_datasets(
        [table.select_columns(["id", "image_id"]), image_part, table.remove_columns(["id", "image_id"])],
        axis=1,
    )
    dd = datasets.DatasetDict({"train": full.select(train_idx), "test": full.select(test_idx)})

    places = {
        s: len({examples[i].place for i in idx}) for s, idx in (("train", train_idx), ("test", test_idx))
    }
    overlap = {examples[i].place for i in train_idx} & {examples[i].place for i in test_idx}
    assert not overlap, f"places in both splits: {sorted(overlap)[:3]}"  # split_by_place's promise
    splits = {
        "train": _counts([labels[i] for i in train_idx]),
        "train_before_balance": natural_train,
        "test": _counts([labels[i] for i in test_idx]),
    }
    warnings = []
    for name in ("train", "test"):
        c = splits[name]
        if c["total"] and (c["yes"] == 0 or c["no"] == 0):
            one = "yes" if c["yes"] else "no"
            warnings.append(
                f"the {name} split holds '{one}' examples only"
                + (" (AUROC undefined)" if name == "test" else "")
            )
    summary = LocatabilitySummary(
        out_dir=out,
        source=str(source),
        kind=kind,
        n_images=n_images,
        n_candidates=n_candidates,
        n_examples=len(examples),
        dropped=dict(dropped.most_common()),
        splits=splits,
        places=places,
        config=asdict(config),
        warnings=warnings,
    )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dd.save_to_disk(str(tmp))
    from georeason.runs import write_json

    write_json(tmp / SUMMARY_FILE, summary.to_dict())
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    for w in warnings:
        log(f"warning: {w}")
    return summary


__all__ = [
    "BALANCES",
    "RULES",
    "SPLIT_LEVELS",
    "SUMMARY_FILE",
    "Example",
    "LocatabilityConfig",
    "LocatabilityError",
    "LocatabilitySummary",
    "balance_indices",
    "build_locatability_dataset",
    "label_record",
    "parse_label",
    "place_key",
    "split_by_place",
    "verdict",
]
