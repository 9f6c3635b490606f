"""What the served model can take: its context, its image budget, a request's prompt tokens.

The server asks these before a request reaches the generation worker, so a prompt
longer than the model's context (or the server's cap) costs a tokenizer pass that
stops at the limit, never a forward pass. Everything is read off the backend with
``getattr``: a backend without a tokenizer (``openai``) gets no prompt check here
and relies on its own (vLLM refuses prompts over ``max_model_len``).
"""

from __future__ import annotations

from typing import Any

#: characters tokenized per call when counting (early exit once over the limit)
COUNT_CHUNK_CHARS = 16_384


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
