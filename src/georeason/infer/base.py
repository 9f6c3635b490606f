"""The inference API: requests in, completions out, whatever runs the model.

A :class:`Backend` turns a batch of :class:`Request` (one image + conversational
messages from ``protocol.messages()``) into one :class:`Response` each. Backends
are chosen by a string (:func:`get_backend`) and import their heavy libraries
only when chosen (open_clip / lm-eval style), so this module is torch-free.

The contract the evaluation runner relies on: ``generate`` never raises for a
per-request failure. A request that fails (an image the processor rejects, a
server error after retries, a timeout) gets a Response with ``text=None`` and
``error`` set, and the others in the batch still complete.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


#: the spellings GLOBE's locatability judge counts as each answer
YES_TOKENS: tuple[str, ...] = ("yes", "Yes", "YES")
NO_TOKENS: tuple[str, ...] = ("no", "No", "NO")


@dataclass
class Request:
    """One image and its prompt.

    ``image`` is already loaded, RGB and resized (see :func:`georeason.images.load_image`).
    ``messages`` are conversational messages as ``protocol.messages()`` builds
    them; the user turn holds ``{"type": "image"}`` where the image goes.
    """

    id: str
    image: Image.Image | None
    messages: list[dict[str, Any]]


@dataclass
class Response:
    """The completion for one :class:`Request`; ``text`` is None on failure and
    ``error`` says why (backend error, timeout, ...)."""

    id: str
    text: str | None
    error: str | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. token counts
    samples: list[str] = field(default_factory=list)  # with n > 1: every sampled completion

    @property
    def ok(self) -> bool:
        return self.text is not None and self.error is None

    @property
    def texts(self) -> list[str]:
        """Every completion of this request: the ``n`` samples, else ``[text]`` (``[]`` on failure)."""
        if self.samples:
            return list(self.samples)
        return [self.text] if self.text is not None else []


class BackendError(RuntimeError):
    """A backend could not be created (missing extra, bad option, unreachable model)."""


class Backend(abc.ABC):
    """Turns requests into completions. Subclasses: ``hf``, ``openai``, ``vllm``."""

    name: str = "backend"
    model_name: str = ""
    #: per-request error messages of the last ``yes_no_logprobs`` call (None where it worked)
    last_errors: list[str | None]

    @abc.abstractmethod
    def generate(
        self,
        requests: list[Request],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Response]:
        """One Response per request, in order. ``temperature == 0`` means greedy.

        Never raises for a per-request failure: that Response has ``error`` set.
        """

    def yes_no_logprobs(
        self,
        requests: list[Request],
        *,
        yes_tokens: Sequence[str] = YES_TOKENS,
        no_tokens: Sequence[str] = NO_TOKENS,
    ) -> list[tuple[float, float] | None]:
        """``(log P(yes), log P(no))`` of the answer that follows each prompt.

        GLOBE's locatability reward is ``R_loc = P(yes) / (P(yes) + P(no))``
        (arXiv 2506.14674); see :func:`yes_probability`. Each side sums the
        probabilities of its spellings (``yes_tokens``: yes / Yes / YES, as
        GLOBE counts them). ``None`` for a request that could not be scored
        (never a silent 0); the reason is in :attr:`last_errors`.
        """
        raise NotImplementedError(f"backend {self.name!r} does not expose log-probabilities")

    def close(self) -> None:  # noqa: B027  (optional hook, no-op by default)
        """Release resources (model memory, HTTP pools, server processes)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def yes_probability(logprobs: tuple[float, float] | None) -> float | None:
    """``P(yes) / (P(yes) + P(no))`` from ``(log P(yes), log P(no))`` — GLOBE's R_loc.

    >>> round(yes_probability((-0.1053605, -2.3025851)), 3)
    0.9
    >>> yes_probability(None) is None
    True
    """
    if logprobs is None:
        return None
    import math

    ly, ln = logprobs
    if ly == -math.inf and ln == -math.inf:
        return None
    m = max(ly, ln)
    py, pn = math.exp(ly - m), math.exp(ln - m)
    return py / (py + pn)


def logsumexp(xs: Sequence[float]) -> float:
    """``log Σ exp(x)``, stable: the log-probability of a set of tokens (the yes spellings).

    >>> round(logsumexp([-0.6931471805599453, -0.6931471805599453]), 12), logsumexp([])
    (0.0, -inf)
    """
    import math

    if not xs:
        return -math.inf
    m = max(xs)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(x - m) for x in xs))


#: backend name -> "module:Class" (imported only when chosen)
BACKENDS: dict[str, str] = {
    "hf": "georeason.infer.hf:HFBackend",
    "openai": "georeason.infer.openai_backend:OpenAIBackend",
    "vllm": "georeason.infer.vllm_backend:VLLMBackend",
}


def get_backend(name: str, model: str, **options: Any) -> Backend:
    """Create a backend by name: ``"hf"`` | ``"openai"`` | ``"vllm"``.

    ``model`` is a local path or hub id (hf, vllm) or the served model name (openai).
    ``options`` go to the backend's constructor (e.g. ``max_pixels``, ``batch_size``,
    ``base_url``, ``concurrency``, ``api_key_env``).
    """
    key = name.strip().lower()
    if key not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module_name, cls_name = BACKENDS[key].split(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, cls_name)
    backend: Backend = cls(model, **options)
    return backend


def check_sampling(n: int, temperature: float) -> None:
    """Reject ``n`` samples that cannot differ or cannot exist (shared by every backend)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n (samples per request) must be an integer >= 1, got {n!r}")
    if n > 1 and temperature == 0:
        raise ValueError(f"n={n} samples need a temperature > 0: greedy decoding gives one answer {n} times")


def image_parts(messages: list[dict[str, Any]]) -> int:
    """How many image placeholders the messages hold (``{"type": "image"}`` or ``image_url`` parts)."""
    n = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            n += sum(
                1 for part in content if isinstance(part, dict) and part.get("type") in ("image", "image_url")
            )
    return n


def check_request(request: Request) -> str | None:
    """Why a request cannot run (None when it can): one image per image placeholder."""
    if not isinstance(request.messages, list) or not request.messages:
        return "request has no messages"
    n = image_parts(request.messages)
    has_image = request.image is not None
    if n > 1:
        return f"messages hold {n} image placeholders; a request carries one image"
    if n == 1 and not has_image:
        return "messages hold an image placeholder but the request has no image"
    if n == 0 and has_image:
        return 'request has an image but the messages hold no {"type": "image"} placeholder'
    return None
