r"""GLOBE's locatability reward and the judges behind it (arXiv 2506.14674).

GLOBE scores each completion by asking a judge VLM, given the image and the
completion's location reasoning, whether the image is visually locatable, and
reads the judge's next-token probabilities:

.. math:: R_{loc} = \frac{P(\text{yes})}{P(\text{yes}) + P(\text{no})}

A *judge* here is any callable

``judge(completions: list[str], *, prompts: list | None, images: list | None) -> Sequence[float | None | BaseException]``

returning one entry per completion: ``P(yes)`` in [0, 1], or ``None`` / an exception
instance for an item it could not judge. Four are provided:

- :class:`BackendJudge` uses any :mod:`georeason.infer` backend (``hf``, ``openai``,
  ``vllm``) through its ``yes_no_logprobs``; a judge given as the URL of an
  OpenAI-compatible server (vLLM, SGLang, TGI, a hosted API) is a BackendJudge over the
  ``openai`` backend (the official SDK, with its retries and timeouts); a judge given as
  a local model folder (``hf:PATH``, e.g. the reward model ``georeason train
  locatability-rm`` writes, merged or as a LoRA adapter) is a :class:`LocalJudge`: a
  BackendJudge over the ``hf`` backend, loaded in process on first use.
- :class:`LogprobJudge` wraps your own function returning the top log-probabilities of
  the next token and applies GLOBE's formula.
- :class:`KeywordJudge` is a deterministic heuristic over the completion text (cue words
  vs. hedges): cheap, offline, for smoke runs and tests — **not** GLOBE's judge.
- any function of your own with the signature above.

A judge failure is never a silent 0 (GLOBE's plugin catches every error and scores 0.0,
and hard-codes its server's IP): the failure is logged (and, inside TRL, counted in the
metric ``<reward name>/judge_failures``) and the item scores ``None`` — or, with
``on_error="raise"``, :class:`~georeason.rewards.formulas.JudgeError` is raised.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from georeason.protocols import completion_text
from georeason.rewards.batch import text_key
from georeason.rewards.formulas import (
    GLOBE_NO_TOKENS,
    GLOBE_YES_TOKENS,
    JudgeError,
    locatability_from_logprobs,
)

logger = logging.getLogger("georeason.rewards")

__all__ = [
    "GLOBE_JUDGE_PROMPT",
    "BackendJudge",
    "GlobeLocatability",
    "JudgeError",
    "KeywordJudge",
    "LocalJudge",
    "LogprobBackend",
    "LogprobJudge",
    "judge_messages",
    "make_globe_locatability",
    "openai_judge",
    "resolve_judge",
]

# The instruction GLOBE's released plugin sends its locatability judge (system message).
GLOBE_JUDGE_PROMPT = (
    "Given input image and its location reasoning text, please determine if the image is visually "
    "locatable, then output \u201cyes\u201d or \u201cno\u201d directly.\n"
)


def judge_messages(
    text: str, *, image: bool = True, system_prompt: str = GLOBE_JUDGE_PROMPT
) -> list[dict[str, Any]]:
    """The judge's conversation: GLOBE's instruction as the system turn, the image (a
    placeholder) and the text to judge as the user turn. One definition, shared by the
    judges that ask a model and by the reward model's training data
    (:mod:`georeason.train.locatability`), so a trained judge is asked what it learned.

    >>> [m["role"] for m in judge_messages("Cyrillic signs.")], judge_messages("x")[1]["content"][0]
    (['system', 'user'], {'type': 'image'})
    """
    user: list[dict[str, Any]] = [{"type": "image"}] if image else []
    user.append({"type": "text", "text": text})
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


# backend(text, image, system_prompt) -> top log-probabilities of the judge's next token
LogprobBackend = Callable[[str, Any, str], "Mapping[str, float] | Iterable[tuple[str, float]]"]
JudgeOutput = Sequence["float | BaseException | None"]


class LogprobJudge:
    r"""A locatability judge over any backend that returns next-token log-probabilities.

    ``backend(text, image, system_prompt)`` returns the top log-probabilities of the judge's
    first answer token, as a mapping ``{token: logprob}`` or ``(token, logprob)`` pairs.
    Each item scores ``P(yes)/(P(yes)+P(no))`` (tokens compared after stripping spaces;
    GLOBE counts ``yes/Yes/YES`` and ``no/No/NO``). A backend exception, or no yes/no token
    among the top log-probs, makes that item a :class:`JudgeError` (reported by the reward).
    ``max_workers > 1`` queries the backend from a thread pool (remote servers batch them).

    >>> import math
    >>> table = {"locatable": {"yes": math.log(0.9), "no": math.log(0.1)}, "vague": {"no": 0.0}}
    >>> judge = LogprobJudge(lambda text, image, system: table[text])
    >>> [round(x, 6) for x in judge(["locatable", "vague"])]
    [0.9, 0.0]
    """

    def __init__(
        self,
        backend: LogprobBackend,
        *,
        system_prompt: str = GLOBE_JUDGE_PROMPT,
        yes_tokens: Iterable[str] = GLOBE_YES_TOKENS,
        no_tokens: Iterable[str] = GLOBE_NO_TOKENS,
        max_workers: int = 1,
    ) -> None:
        if not callable(backend):
            raise TypeError(
                f"backend must be callable (text, image, system_prompt) -> log-probs, got {backend!r}"
            )
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.backend = backend
        self.system_prompt = system_prompt
        self.yes_tokens = tuple(yes_tokens)
        self.no_tokens = tuple(no_tokens)
        self.max_workers = max_workers

    def __repr__(self) -> str:
        return f"LogprobJudge(backend={self.backend!r}, max_workers={self.max_workers})"

    def score(self, text: str, image: Any = None) -> float:
        r"""P(yes)/(P(yes)+P(no)) for one completion; raises :class:`JudgeError` on failure."""
        try:
            top = self.backend(text, image, self.system_prompt)
        except JudgeError:
            raise
        except Exception as exc:
            raise JudgeError(f"judge backend failed: {type(exc).__name__}: {exc}") from exc
        return locatability_from_logprobs(top, self.yes_tokens, self.no_tokens)

    def _score_or_error(self, args: tuple[str, Any]) -> float | BaseException:
        try:
            return self.score(*args)
        except JudgeError as exc:
            return exc

    def __call__(
        self,
        completions: Sequence[str],
        *,
        prompts: Sequence[Any] | None = None,
        images: Sequence[Any] | None = None,
    ) -> list[float | BaseException]:
        items = [(text, images[i] if images is not None else None) for i, text in enumerate(completions)]
        if self.max_workers == 1 or len(items) <= 1:
            return [self._score_or_error(it) for it in items]
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return list(pool.map(self._score_or_error, items))


class BackendJudge:
    """A locatability judge over a :class:`georeason.infer.base.Backend` (``hf``, ``openai``, ``vllm``).

    Builds one request per completion — GLOBE's judge instruction as the system turn, the
    image and the completion as the user turn — and asks the backend's
    ``yes_no_logprobs`` for ``(log P(yes), log P(no))`` of the next token, then
    ``P(yes)/(P(yes)+P(no))``. A request the backend could not score (``None``), or with no
    probability on either answer, becomes a :class:`JudgeError` for that item. Images may
    be PIL images, paths, bytes, Hugging Face ``Image`` dicts or lists of these (the first
    is used); non-PIL ones are loaded with :func:`georeason.images.load_image`.
    """

    def __init__(
        self, backend: Any, *, system_prompt: str = GLOBE_JUDGE_PROMPT, max_pixels: int | None = None
    ) -> None:
        if not hasattr(backend, "yes_no_logprobs"):
            raise TypeError(
                f"backend must have yes_no_logprobs(requests) (a georeason.infer Backend), got {backend!r}"
            )
        self.backend = backend
        self.system_prompt = system_prompt
        self.max_pixels = max_pixels

    def __repr__(self) -> str:
        return f"BackendJudge(backend={self.backend!r})"

    def _image(self, image: Any) -> Any:
        if isinstance(image, (list, tuple)):
            image = image[0] if image else None
        if isinstance(image, Mapping):
            image = image.get("bytes") or image.get("path")
        if image is None:
            return None
        from georeason.images import load_image  # needs Pillow: imported only for image judges

        return load_image(image, max_pixels=self.max_pixels)

    def __call__(
        self,
        completions: Sequence[str],
        *,
        prompts: Sequence[Any] | None = None,
        images: Sequence[Any] | None = None,
    ) -> list[float | BaseException]:
        from georeason.infer.base import Request, yes_probability

        out: list[float | BaseException | None] = [None] * len(completions)
        requests, where = [], []
        for i, text in enumerate(completions):
            try:
                image = self._image(images[i]) if images is not None else None
            except Exception as exc:  # an unreadable image fails that item only
                out[i] = JudgeError(f"cannot load the image for the judge: {exc}")
                continue
            messages = judge_messages(text, image=image is not None, system_prompt=self.system_prompt)
            requests.append(Request(id=str(i), image=image, messages=messages))
            where.append(i)
        if requests:
            logprobs = self.backend.yes_no_logprobs(requests)
            if len(logprobs) != len(requests):
                raise JudgeError(
                    f"backend returned {len(logprobs)} log-probability pairs for {len(requests)} requests"
                )
            # The backend says why a request has no log-probabilities (an HTTP status after
            # retries, a timeout, invalid JSON, no choices): keep that, not a generic line.
            reasons = getattr(self.backend, "last_errors", None)
            if not isinstance(reasons, list) or len(reasons) != len(requests):
                reasons = [None] * len(requests)
            for i, lp, why in zip(where, logprobs, reasons, strict=True):
                p = yes_probability(lp)
                if p is None:
                    out[i] = JudgeError(
                        f"the backend gave no yes/no log-probabilities: {why}"
                        if why
                        else "the backend gave no yes/no log-probabilities"
                    )
                else:
                    out[i] = p
        return [x if x is not None else JudgeError("not judged") for x in out]


class LocalJudge:
    """A locatability judge on a local model folder, scored in process: a :class:`BackendJudge`
    over the ``hf`` backend (batched teacher-forced ``log P(yes)``, ``log P(no)``).

    ``path`` is a model folder (``from_pretrained`` loads it: a full or LoRA-merged
    checkpoint, e.g. ``output_dir/merged`` of ``georeason train locatability-rm``) or a
    PEFT LoRA adapter folder (``adapter_config.json``): its base model
    (``base_model_name_or_path``) is loaded and the adapter merged in. The model loads on
    the first call, not here: building the reward (a config check does it once more) costs
    nothing. ``options`` go to :class:`georeason.infer.hf.HFBackend` (``batch_size``,
    ``device``, ``dtype``, ``max_pixels``, ...).
    """

    def __init__(self, path: str, *, system_prompt: str = GLOBE_JUDGE_PROMPT, **options: Any) -> None:
        from pathlib import Path

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ValueError(
                f"judge model folder {path} does not exist (train one with `georeason train locatability-rm`)"
            )
        if not any((folder / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise ValueError(
                f"{path} is not a model folder: it has neither config.json nor adapter_config.json"
            )
        self.path = str(folder)
        self.system_prompt = system_prompt
        self.options = dict(options)
        self._judge: BackendJudge | None = None

    def __repr__(self) -> str:
        return f"LocalJudge({self.path!r})"

    def load(self) -> BackendJudge:
        """The BackendJudge over the loaded model (loaded once)."""
        if self._judge is None:
            import json
            from pathlib import Path

            from georeason.infer.hf import HFBackend

            adapter = Path(self.path) / "adapter_config.json"
            options = dict(self.options)
            if adapter.is_file():
                from peft import PeftModel

                from georeason.models import load_model

                base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
                if not base:
                    raise ValueError(f"{adapter} names no base_model_name_or_path to load the adapter onto")
                model, processor = load_model(
                    base,
                    dtype=options.pop("dtype", "auto"),
                    max_pixels=options.get("max_pixels"),
                    min_pixels=options.pop("min_pixels", None),
                )
                model = PeftModel.from_pretrained(model, self.path).merge_and_unload()
                backend = HFBackend(self.path, model_obj=model, processor=processor, **options)
            else:
                backend = HFBackend(self.path, **options)
            self._judge = BackendJudge(
                backend, system_prompt=self.system_prompt, max_pixels=options.get("max_pixels")
            )
        return self._judge

    def __call__(
        self,
        completions: Sequence[str],
        *,
        prompts: Sequence[Any] | None = None,
        images: Sequence[Any] | None = None,
    ) -> list[float | BaseException]:
        return self.load()(completions, prompts=prompts, images=images)


# Phrases in a completion that point at concrete, place-specific evidence ...
_CUES = (
    "sign",
    "signs",
    "signage",
    "street sign",
    "street signs",
    "road sign",
    "road signs",
    "license plate",
    "license plates",
    "licence plate",
    "number plate",
    "flag",
    "flags",
    "script",
    "language",
    "written in",
    "text reads",
    "landmark",
    "landmarks",
    "monument",
    "cathedral",
    "temple",
    "mosque",
    "pagoda",
    "church",
    "architecture",
    "architectural",
    "bollard",
    "bollards",
    "road markings",
    "drives on the left",
    "driving on the left",
    "drives on the right",
    "driving on the right",
    "coastline",
    "mountains",
    "mountain range",
    "volcano",
    "desert",
    "rainforest",
    "palm trees",
    "vegetation",
    "brand",
    "storefront",
    "shop names",
    "utility poles",
    "currency",
    "skyline",
)
# ... and phrases that admit there is none.
_HEDGES = (
    "cannot determine",
    "can not determine",
    "can't determine",
    "impossible to",
    "not possible to",
    "hard to tell",
    "difficult to determine",
    "difficult to tell",
    "unclear",
    "no clear",
    "no distinctive",
    "no visible",
    "no identifiable",
    "not enough",
    "insufficient",
    "generic",
    "could be anywhere",
    "anywhere in the world",
    "indoor",
    "indoors",
    "close up",
    "close-up",
    "uncertain",
    "ambiguous",
    "no landmarks",
    "no text",
)


class KeywordJudge:
    r"""A deterministic locatability heuristic over the completion text — a stand-in judge.

    Counts distinct cue phrases (signs, script, landmarks, driving side, vegetation, ...)
    and hedge phrases ("cannot determine", "generic", "indoors", ...) at word boundaries,
    then smooths: ``P(yes) = (1 + cues) / (2 + cues + hedge_weight · hedges)``, so an
    empty text gives 0.5. It never sees the image: use it for offline smoke runs and
    tests of the reward plumbing, not to reproduce GLOBE (whose judge is a VLM).

    >>> judge = KeywordJudge()
    >>> [round(p, 3) for p in judge(["Road signs in Cyrillic script and a cathedral dome.",
    ...                              "A generic indoor close-up; impossible to tell.", ""])]
    [0.833, 0.1, 0.5]
    """

    def __init__(
        self, cues: Iterable[str] = _CUES, hedges: Iterable[str] = _HEDGES, *, hedge_weight: float = 2.0
    ) -> None:
        if hedge_weight < 0:
            raise ValueError(f"hedge_weight must be >= 0, got {hedge_weight}")
        # dict.fromkeys: distinct phrases after normalisation ("close-up" == "close up")
        self.cues = tuple(dict.fromkeys(k for k in (text_key(c) for c in cues) if k))
        self.hedges = tuple(dict.fromkeys(k for k in (text_key(h) for h in hedges) if k))
        self.hedge_weight = float(hedge_weight)
        # Phrases are looked up as word n-grams of the text (exactly "phrase at word
        # boundaries"), starting only at words that begin some phrase.
        self._phrases = frozenset(self.cues) | frozenset(self.hedges)
        self._first_words = frozenset(p.split()[0] for p in self._phrases)
        self._max_words = max((len(p.split()) for p in self._phrases), default=0)
        self._cue_set = frozenset(self.cues)

    def __repr__(self) -> str:
        return f"KeywordJudge({len(self.cues)} cues, {len(self.hedges)} hedges, hedge_weight={self.hedge_weight})"

    def score(self, text: str) -> float:
        words = text_key(text).split()
        found: set[str] = set()
        for i, word in enumerate(words):
            if word in self._first_words:  # only phrases starting here can match
                for n in range(1, min(self._max_words, len(words) - i) + 1):
                    gram = " ".join(words[i : i + n])
                    if gram in self._phrases:
                        found.add(gram)
        cues = sum(1 for k in found if k in self._cue_set)
        hedges = len(found) - cues
        return (1.0 + cues) / (2.0 + cues + self.hedge_weight * hedges)

    def __call__(
        self,
        completions: Sequence[str],
        *,
        prompts: Sequence[Any] | None = None,
        images: Sequence[Any] | None = None,
    ) -> list[float]:
        return [self.score(t) for t in completions]


def _is_folder(text: str) -> bool:
    from pathlib import Path

    try:
        return Path(text).expanduser().is_dir()
    except OSError:  # a name too long for the file system is not a folder
        return False


# openai:URL[:MODEL], as for distill's teachers: the URL ends where ":MODEL" starts
_OPENAI_SPEC = re.compile(r"^openai:(https?://[^/:\s]+(?::\d+)?(?:/[^:\s]*)?)(?::(.+))?$")


def openai_judge(
    base_url: str, model: str, *, max_workers: int = 8, judge_options: Mapping[str, Any] | None = None
) -> BackendJudge:
    r"""GLOBE's judge on an OpenAI-compatible server: a :class:`BackendJudge` over the ``openai``
    backend (``max_workers`` requests in flight). ``judge_options`` go to
    :class:`georeason.infer.openai_backend.OpenAIBackend` (``max_retries``, ``timeout``,
    ``api_key_env``, ``max_pixels``, ``image_format``, ``extra_body``, ...); the key comes
    from ``$OPENAI_API_KEY`` (or ``api_key_env``), none -> no Authorization header.
    """
    from georeason.infer.openai_backend import OpenAIBackend  # needs the openai SDK (serve extra)

    options = {"concurrency": max_workers, **(judge_options or {})}
    return BackendJudge(OpenAIBackend(model, base_url=base_url, **options))


def resolve_judge(
    judge: Any,
    *,
    judge_model: str | None = None,
    max_workers: int = 8,
    judge_options: Mapping[str, Any] | None = None,
) -> Callable[..., JudgeOutput]:
    r"""A judge from a config value: a callable (used as is), a :mod:`georeason.infer` backend
    (:class:`BackendJudge`), ``"keyword"`` (:class:`KeywordJudge`), an OpenAI-compatible judge
    server as ``"http(s)://HOST:PORT/v1"`` plus ``judge_model`` or as
    ``"openai:URL[:MODEL]"`` (:func:`openai_judge`: a BackendJudge over the ``openai``
    backend, options in ``judge_options``), a local model folder as ``"hf:PATH"`` or as an
    existing folder's path (:class:`LocalJudge`, options in ``judge_options``), or a
    ``"package.module:name"`` path to a judge or a judge class (instantiated without arguments).

    >>> resolve_judge("keyword")
    KeywordJudge(48 cues, 25 hedges, hedge_weight=2.0)
    """
    if hasattr(judge, "yes_no_logprobs") and not isinstance(judge, type):
        return BackendJudge(judge)
    if callable(judge) and not isinstance(judge, type):
        return judge
    if isinstance(judge, str):
        if judge == "keyword":
            return KeywordJudge()
        if judge.startswith("hf:") or _is_folder(judge):
            return LocalJudge(judge.removeprefix("hf:"), **dict(judge_options or {}))
        url, model = judge, judge_model
        if judge.startswith("openai:"):
            m = _OPENAI_SPEC.match(judge.strip())
            if not m:
                raise ValueError(
                    f"bad judge {judge!r}: use openai:URL[:MODEL], e.g. openai:http://127.0.0.1:8001/v1:qwen2.5-vl"
                )
            url, model = m.group(1), m.group(2) or judge_model
        if url.startswith(("http://", "https://")):
            if not model:
                raise ValueError(
                    f"a judge server URL ({url}) needs judge_model=<the served model name> "
                    "(or give it as openai:URL:MODEL)"
                )
            return openai_judge(url, model, max_workers=max_workers, judge_options=judge_options)
        from georeason.rewards.registry import import_object

        obj = import_object(judge, what="judge")
        return resolve_judge(obj() if isinstance(obj, type) else obj)
    if isinstance(judge, type):
        return resolve_judge(judge())
    raise TypeError(
        "judge must be a callable (completions, *, prompts, images) -> P(yes) list, a georeason.infer backend, "
        "'keyword', an http(s) URL (or openai:URL[:MODEL]) of an OpenAI-compatible judge server, "
        f"or a 'package.module:name' path; got {judge!r}"
    )


class GlobeLocatability:
    r"""GLOBE's locatability reward ``R_loc = P(yes)/(P(yes)+P(no))`` from a pluggable judge.

    The judge gets the completion texts, and the ``prompts`` and the images (column
    ``images`` or ``image``) when the batch has them. A judge that raises fails the whole
    batch; an item given as ``None``, an exception, NaN or a value outside [0, 1] fails
    that item. Failures are logged with their reason and score ``None`` (``on_error="none"``,
    the default: TRL then leaves them out of the advantage) or raise :class:`JudgeError`
    (``on_error="raise"``). Never a silent 0.

    >>> loc = GlobeLocatability(KeywordJudge())
    >>> [round(x, 3) for x in loc(["<think>Cyrillic road signs.</think><answer>country: Russia\ncity: Moscow</answer>"])]
    [0.75]
    """

    def __init__(
        self,
        judge: Any,
        *,
        on_error: Literal["none", "raise"] = "none",
        name: str = "globe_locatability",
        judge_model: str | None = None,
        judge_options: Mapping[str, Any] | None = None,
    ) -> None:
        if on_error not in ("none", "raise"):
            raise ValueError(f"on_error must be 'none' or 'raise', got {on_error!r}")
        self.judge = resolve_judge(judge, judge_model=judge_model, judge_options=judge_options)
        self.on_error = on_error
        self.__name__ = name

    def __repr__(self) -> str:
        return f"GlobeLocatability(judge={self.judge!r}, on_error={self.on_error!r}, name={self.__name__!r})"

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        texts = []
        for c in completions:
            try:
                texts.append(completion_text(c))
            except Exception:
                texts.append("")
        images = columns.get("images", columns.get("image"))
        prompts = columns.get("prompts")
        try:
            raw = list(self.judge(texts, prompts=prompts, images=images))
            if len(raw) != n:
                raise JudgeError(f"judge returned {len(raw)} values for {n} completions")
        except Exception as exc:
            logger.error(
                "%s: the judge failed on a batch of %d: %s: %s", self.__name__, n, type(exc).__name__, exc
            )
            self._log_failures(columns, n)
            if self.on_error == "raise":
                raise exc if isinstance(exc, JudgeError) else JudgeError(f"judge failed: {exc}") from exc
            return [None] * n
        out: list[float | None] = []
        failures: list[str] = []
        for i, value in enumerate(raw):
            reason = _item_failure(value)
            if reason is None:
                out.append(float(value))  # type: ignore[arg-type]
            else:
                failures.append(f"#{i}: {reason}")
                out.append(None)
        if failures:
            shown = "; ".join(failures[:5]) + (
                f"; ... ({len(failures) - 5} more)" if len(failures) > 5 else ""
            )
            logger.error(
                "%s: the judge failed on %d of %d completions: %s", self.__name__, len(failures), n, shown
            )
            self._log_failures(columns, len(failures))
            if self.on_error == "raise":
                raise JudgeError(f"judge failed on {len(failures)} of {n} completions: {shown}")
        return out

    def _log_failures(self, columns: Mapping[str, Any], count: int) -> None:
        log_metric = columns.get("log_metric")
        if callable(log_metric):  # TRL >= 1.x passes it: the count shows beside the reward curves
            try:
                log_metric(f"{self.__name__}/judge_failures", float(count))
            except Exception:  # logging must never fail the step
                logger.debug("log_metric failed", exc_info=True)


def _item_failure(value: Any) -> str | None:
    if value is None:
        return "no value"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return f"not a probability: {value!r}"
    if not math.isfinite(x) or not 0.0 <= x <= 1.0:
        return f"not a probability in [0, 1]: {value!r}"
    return None


def make_globe_locatability(
    judge: Any,
    *,
    on_error: Literal["none", "raise"] = "none",
    name: str = "globe_locatability",
    judge_model: str | None = None,
    judge_options: Mapping[str, Any] | None = None,
) -> GlobeLocatability:
    r"""GLOBE's locatability reward over ``judge`` (see :func:`resolve_judge` for the accepted forms;
    ``judge_options`` configure a judge server's client, see :func:`openai_judge`).

    >>> reward = make_globe_locatability(lambda texts, **_: [0.9 if "sign" in t else 0.2 for t in texts])
    >>> reward.__name__, reward(["a street sign", "a wall"])
    ('globe_locatability', [0.9, 0.2])
    """
    return GlobeLocatability(
        judge, on_error=on_error, name=name, judge_model=judge_model, judge_options=judge_options
    )
