"""What the server takes: a request body's size, and what the served model can take
(its context, its image budget, a request's prompt tokens).

:class:`BodySizeLimit` (ASGI middleware) answers 413 for bodies over the limit, on the
``Content-Length`` header before reading and while reading chunked bodies.

The server asks these before a request reaches the generation worker, so a prompt
longer than the model's context (or the server's cap) costs a tokenizer pass that
stops at the limit, never a forward pass. Everything is read off the backend with
``getattr``: a backend without a tokenizer (``openai``) gets no prompt check here
and relies on its own (vLLM refuses prompts over ``max_model_len``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException

#: characters tokenized per call when counting (early exit once over the limit)
COUNT_CHUNK_CHARS = 16_384

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?\s*$", re.I)


def parse_size(text: str | int) -> int:
    """Bytes from ``"20MB"``, ``"512k"``, ``"1GiB"`` or ``1000`` (k/M/G are powers of 1024).

    >>> parse_size("20MB"), parse_size("1.5k"), parse_size(7)
    (20971520, 1536, 7)
    """
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if m is None:
        raise ValueError(f"bad size {text!r}: use bytes or a number with k, MB or GB (e.g. 20MB)")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


class PayloadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the limit of {limit:,} bytes (max_request_bytes)")


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes``.

    The body is read and discarded (up to 16x the limit) before answering, so a
    client that writes its whole request before reading — most do — sees the
    413 instead of a broken pipe.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _drain(self, receive: Any, already: int) -> None:
        seen = already
        while seen <= 16 * self.max_bytes:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            seen += len(msg.get("body", b""))
            if not msg.get("more_body", False):
                return

    async def _reject(self, send: Any) -> None:
        from georeason.serve.errors import error_response

        resp = error_response(
            413, PayloadTooLarge(self.max_bytes).detail, "request_too_large", headers={"Connection": "close"}
        )
        await send({"type": "http.response.start", "status": 413, "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_bytes:
                await self._drain(receive, 0)
                await self._reject(send)
                return
        received = 0

        async def limited() -> dict[str, Any]:
            nonlocal received
            msg: dict[str, Any] = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    if msg.get("more_body", False):
                        await self._drain(receive, received)
                    raise PayloadTooLarge(self.max_bytes)
            return msg

        await self.app(scope, limited, send)


def model_context(backend: Any) -> int | None:
    """Positions the model can attend to (``max_position_embeddings`` of its text model), or None."""
    model = getattr(backend, "model", None)
    config = getattr(model, "config", None)
    if config is not None:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        n = getattr(text, "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    llm = getattr(backend, "llm", None)  # vLLM
    n = getattr(getattr(getattr(llm, "llm_engine", None), "model_config", None), "max_model_len", None)
    return n if isinstance(n, int) and n > 0 else None


def model_max_pixels(backend: Any) -> int | None:
    """The most pixels the model's processor keeps of an image (it resizes larger ones down), or None."""
    own = getattr(backend, "max_pixels", None)
    if isinstance(own, int) and own > 0:
        return own
    image_processor = getattr(getattr(backend, "processor", None), "image_processor", None)
    n = getattr(image_processor, "max_pixels", None)
    if not isinstance(n, int):
        size: Any = getattr(image_processor, "size", None)
        n = size.get("longest_edge") if hasattr(size, "get") else None  # Qwen2-VL: pixels, not a side
    return n if isinstance(n, int) and n > 0 else None


def count_tokens(tokenizer: Any, text: str, stop_above: int | None = None) -> int:
    """Tokens of ``text``; stops counting once past ``stop_above`` (the result is then > it).

    Long texts are tokenized in chunks of about :data:`COUNT_CHUNK_CHARS` cut before a
    newline or a space, where byte-level BPE starts a new piece anyway, so the sum equals
    the whole text's count up to a token per cut; a text within one chunk is counted exactly.
    A 1,000,000-character prompt against an 8,192-token limit costs a few chunks, not the
    seconds a full pass takes.

    >>> class Chars:  # a stand-in tokenizer: one token per character
    ...     def __call__(self, text, add_special_tokens=False):
    ...         return {"input_ids": list(text)}
    >>> count_tokens(Chars(), "ab cd"), count_tokens(Chars(), "x" * 100_000, stop_above=10) <= 2 * 16_384
    (5, True)
    """
    n, i, end = 0, 0, len(text)
    while i < end:
        j = min(end, i + COUNT_CHUNK_CHARS)
        if j < end:
            cut = max(
                text.rfind("\n", i + COUNT_CHUNK_CHARS // 2, j),
                text.rfind(" ", i + COUNT_CHUNK_CHARS // 2, j),
            )
            if cut > i:
                j = cut
        n += len(tokenizer(text[i:j], add_special_tokens=False)["input_ids"])
        if stop_above is not None and n > stop_above:
            return n
        i = j
    return n


class PromptCounter:
    """Counts a request's prompt tokens as the backend will build them: the chat template's
    text through the tokenizer, plus the image's tokens from the image processor's own rule."""

    def __init__(self, backend: Any) -> None:
        self.processor = getattr(backend, "processor", None)
        tokenizer = getattr(backend, "tokenizer", None) or getattr(self.processor, "tokenizer", None)
        self.tokenizer = tokenizer if callable(tokenizer) else None
        self.context = model_context(backend)

    @property
    def available(self) -> bool:
        return self.tokenizer is not None and hasattr(self.processor, "apply_chat_template")

    def text_tokens(self, messages: list[dict[str, Any]], stop_above: int | None = None) -> int:
        """Tokens of the rendered chat (generation prompt included); the image counts one
        placeholder token here (the processor expands it: see :meth:`image_tokens`)."""
        assert self.processor is not None and self.tokenizer is not None
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return count_tokens(self.tokenizer, text, stop_above)

    def image_tokens(self, size: tuple[int, int]) -> int:
        """Tokens an image of ``size`` (width, height) becomes; 0 when the processor has no rule."""
        image_processor = getattr(self.processor, "image_processor", None)
        patches = getattr(image_processor, "get_number_of_image_patches", None)
        if patches is None:
            return 0
        try:
            n = int(patches(size[1], size[0], {}))
        except Exception:  # a processor without a size rule for this shape: the backend decides
            return 0
        merge = int(getattr(image_processor, "merge_size", 1) or 1)
        return max(0, n // (merge * merge) - 1)  # minus the placeholder text_tokens counted
