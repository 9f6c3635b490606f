"""The OpenAI-compatible subset: ``POST /v1/chat/completions`` and ``GET /v1/models``.

What the ``openai`` backend (and GLOBE's judge) uses: messages with text and
``image_url`` parts holding ``data:`` URLs (at most one image per request),
``max_tokens`` / ``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``,
``n`` (<= 32 samples, one generate call), ``stop``, ``logprobs`` / ``top_logprobs``
(<= 20), and vLLM's ``min_tokens``. Unknown fields are ignored, as OpenAI-compatible
servers do; ``stream=true`` and remote image URLs are refused with 422.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool

from georeason.images import ImageError, decode_data_url, load_image
from georeason.infer.base import Request as InferRequest
from georeason.serve.errors import ApiError
from georeason.serve.state import (
    MAX_SAMPLES,
    MAX_TOP_LOGPROBS,
    SEED_RANGE,
    ServeState,
    check_response,
    get_state,
)

router = APIRouter()
State = Annotated[ServeState, Depends(get_state)]


class ImageURL(BaseModel):
    url: str
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def _check(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError('a "text" part needs a "text" field')
        if self.type == "image_url" and self.image_url is None:
            raise ValueError('an "image_url" part needs an "image_url": {"url": ...} field')
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    min_tokens: int = Field(default=0, ge=0, description="vLLM extension: no end-of-sequence before this")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    seed: int | None = Field(default=None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    n: int = Field(default=1, ge=1, le=MAX_SAMPLES)
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    stream: bool = False

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v: bool) -> bool:
        if v:
            raise ValueError("streaming is not supported; send stream=false")
        return v


@router.get("/v1/models")
async def models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": state.name, "object": "model", "owned_by": "georeason"}]}


def _messages(body: ChatCompletionRequest) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """OpenAI messages -> the backend's messages, and the one image's (data URL, field path)."""
    image: tuple[str, str] | None = None
    messages: list[dict[str, Any]] = []
    for k, m in enumerate(body.messages):
        if isinstance(m.content, str):
            messages.append({"role": m.role, "content": [{"type": "text", "text": m.content}]})
            continue
        parts: list[dict[str, Any]] = []
        for j, part in enumerate(m.content):
            if part.type == "text":
                parts.append({"type": "text", "text": part.text})
                continue
            assert part.image_url is not None
            if image is not None:
                raise ApiError(422, "at most one image per request is supported", "messages")
            url = part.image_url.url
            if not url.startswith("data:"):
                raise ApiError(
                    422,
                    f"messages.{k}.content.{j}.image_url.url: only data: URLs are supported "
                    "(data:image/png;base64,...); this server does not fetch remote images",
                    f"messages.{k}.content.{j}.image_url.url",
                )
            image = (url, f"messages.{k}.content.{j}.image_url")
            parts.append({"type": "image"})
        messages.append({"role": m.role, "content": parts})
    return messages, image


def _load(url: str, where: str, limits: dict[str, Any]) -> Any:
    try:
        return load_image(decode_data_url(url), **limits)
    except ImageError as e:
        raise ApiError(422, f"{where}: {e}", where) from e


def _check_prompt(state: ServeState, prompt: int, max_tokens: int, explicit: bool) -> None:
    """422 when the prompt (so far ``prompt`` tokens) cannot run."""
    cap, context = state.prompt_cap, state.context
    if prompt > cap:
        ctx = f"; the model's context is {context:,}" if context is not None else ""
        raise ApiError(
            422,
            f"messages: the prompt has more than {cap:,} tokens "
            f"(max_prompt_tokens={cap:,}{ctx}); shorten the messages",
            "messages",
        )
    if context is not None and explicit and prompt + max_tokens > context:
        raise ApiError(
            422,
            f"max_tokens: the prompt ({prompt:,} tokens) plus max_tokens ({max_tokens:,}) exceeds the "
            f"model's context of {context:,} tokens; lower max_tokens or shorten the messages",
            "max_tokens",
        )


def _check_options(state: ServeState, body: ChatCompletionRequest, max_tokens: int) -> bool:
    """422 for options this server or its backend cannot honour; whether logprobs are wanted."""
    backend = state.backend.name
    if max_tokens > state.max_new_tokens_limit:
        raise ApiError(
            422,
            f"max_tokens: {max_tokens} is above this server's limit of {state.max_new_tokens_limit}",
            "max_tokens",
        )
    if body.min_tokens > max_tokens:
        raise ApiError(
            422, f"min_tokens ({body.min_tokens}) must be <= max_tokens ({max_tokens})", "min_tokens"
        )
    if body.model and body.model != state.name:
        raise ApiError(422, f"model: this server serves {state.name!r}, not {body.model!r}", "model")
    want_logprobs = body.logprobs or body.top_logprobs is not None
    if body.n > 1 and body.temperature == 0:
        raise ApiError(422, f"n: {body.n} samples need a temperature > 0 (greedy gives one answer)", "n")
    if body.n > 1 and want_logprobs:
        raise ApiError(422, "logprobs: not supported with n > 1", "logprobs")
    if want_logprobs and not state.supports_logprobs:
        raise ApiError(422, f"logprobs: backend {backend!r} does not return log-probabilities", "logprobs")
    if body.min_tokens and not state.supports_min_tokens:
        raise ApiError(422, f"min_tokens: backend {backend!r} does not support it", "min_tokens")
    return want_logprobs


async def _chat(state: ServeState, body: ChatCompletionRequest) -> dict[str, Any]:
    explicit = (body.max_completion_tokens or body.max_tokens) is not None
    max_tokens = body.max_completion_tokens or body.max_tokens or state.default_max_tokens
    want_logprobs = _check_options(state, body, max_tokens)
    messages, image_url = _messages(body)
    counter, context = state.counter, state.context
    async with state.slot() as slot:
        # Count the text first: a huge prompt is refused before its image is decoded, and the
        # count stops at the limit (the tokenizer never sees the whole of a 1 MB prompt).
        prompt = 0
        if counter.available:
            prompt = await run_in_threadpool(counter.text_tokens, messages, state.prompt_cap)
            _check_prompt(state, prompt, max_tokens, explicit)
        image = None
        if image_url is not None:
            image = await state.admission.decode(_load, *image_url, state.image_limits)
        if counter.available and image is not None:
            prompt += counter.image_tokens(image.size)
            _check_prompt(state, prompt, max_tokens, explicit)
        if context is not None and counter.available and not explicit:
            max_tokens = max(1, min(max_tokens, context - prompt))
        request = InferRequest(id=uuid.uuid4().hex, image=image, messages=messages)
        settings: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "seed": body.seed,
        }
        if body.min_tokens:
            settings["min_new_tokens"] = min(body.min_tokens, max_tokens)
        if want_logprobs:
            settings["top_logprobs"] = body.top_logprobs or 0
        if body.n > 1:
            settings["n"] = body.n  # one generate call: the prompt is encoded once for the n
        resp = await state.generate(slot, request, settings)
    check_response(resp)
    choices: list[dict[str, Any]] = []
    for index, text in enumerate(resp.texts):
        finish_reason = resp.extra.get("finish_reason") or "stop"
        if body.stop:
            stops = [body.stop] if isinstance(body.stop, str) else body.stop
            cuts = [text.find(s) for s in stops if s and s in text]
            if cuts:
                text, finish_reason = text[: min(cuts)], "stop"
        choices.append(
            {
                "index": index,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
                "logprobs": {"content": resp.extra.get("logprobs", [])} if want_logprobs else None,
            }
        )
    prompt_tokens = int(resp.extra.get("prompt_tokens") or 0)
    completion_tokens = int(resp.extra.get("completion_tokens") or 0)
    return {
        "id": f"chatcmpl-{request.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": state.name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, http: Request, state: State) -> dict[str, Any]:
    return await state.until_disconnected(http, _chat(state, body))
