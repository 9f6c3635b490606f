"""``POST /v1/locate`` (a photo in, the reasoning, the place and the coordinates out) and ``GET /health``.

``/v1/locate`` takes a multipart form with ``image`` (the file) and optional
``protocol``, ``max_tokens``, ``temperature``, ``samples`` and ``aggregate``
(self-consistency, :mod:`georeason.consensus`); it answers
:meth:`georeason.infer.locate.LocateResult.to_dict`: the reasoning chain, the parsed
answer, the gazetteer place, coordinates, the samples' agreement and, when the photo
has EXIF GPS, the error in km.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from georeason.serve.errors import ApiError
from georeason.serve.state import MAX_SAMPLES, ServeState, check_response, get_state

router = APIRouter()
State = Annotated[ServeState, Depends(get_state)]


@router.get("/health")
async def health(state: State) -> dict[str, Any]:
    counters = state.admission.counters
    admission = state.admission
    return {
        "status": "stopping" if state.worker.stopping else "ok",
        "ready": not state.worker.stopping,
        "model": state.name,
        "backend": state.backend.name,
        "in_flight": counters["in_flight"],
        "preparing": counters["preparing"],
        "max_concurrency": admission.max_concurrency,
        "queue_timeout_s": admission.queue_timeout,
        "generation_timeout_s": admission.generation_timeout,
        "max_prompt_tokens": state.prompt_cap if state.counter.available else None,
        "context": state.context,
        "max_image_pixels": state.max_image_pixels,
        "decoding": counters["decoding"],
        "decoding_peak": counters["decoding_peak"],
        "max_decodes": admission.max_decodes,
        "served": counters["served"],
        "rejected": counters["rejected"],
        "abandoned": counters["abandoned"],
        "timed_out": counters["timed_out"],
        "batches": state.worker.batches,
    }


async def _locate(
    state: ServeState,
    data: bytes,
    filename: str,
    protocol: str,
    max_tokens: int,
    temperature: float,
    samples: int = 1,
    aggregate: str = "medoid",
) -> dict[str, Any]:
    from georeason.infer.locate import finish, prepare

    async with state.slot() as slot:
        # prepare() takes no draft target: resize to the model's budget, which drafts JPEGs too.
        result, request = await state.admission.decode(
            prepare,
            data,
            protocol,
            name=filename,
            max_pixels=state.max_pixels or state.model_pixels,
            max_image_pixels=state.max_image_pixels,
        )
        if request is None:
            raise ApiError(422, f"image: {result.error}", "image")
        settings: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "temperature": temperature,
            "top_p": 1.0,
            "seed": None,
        }
        if samples > 1:
            settings["n"] = samples
        resp = await state.generate(slot, request, settings)
    if resp.text is None:
        check_response(resp)
    result = await run_in_threadpool(partial(finish, aggregate=aggregate), result, resp)
    return result.to_dict()


@router.post("/v1/locate")
async def locate(
    http: Request,
    state: State,
    image: Annotated[UploadFile, File(description="the photo")],
    protocol: Annotated[str | None, Form(description="answer protocol (default: the server's)")] = None,
    max_tokens: Annotated[int | None, Form(ge=1, description="default: the server's")] = None,
    temperature: Annotated[float, Form(ge=0.0, le=2.0, allow_inf_nan=False)] = 0.0,
    samples: Annotated[int, Form(ge=1, le=MAX_SAMPLES)] = 1,
    aggregate: Annotated[str, Form()] = "medoid",
) -> dict[str, Any]:
    from georeason.consensus import AGGREGATORS
    from georeason.protocols import PROTOCOLS

    protocol = state.default_protocol if protocol is None else protocol
    max_tokens = state.default_max_tokens if max_tokens is None else max_tokens
    if aggregate not in AGGREGATORS:
        raise ApiError(
            422, f"aggregate: unknown {aggregate!r}; choose one of {', '.join(AGGREGATORS)}", "aggregate"
        )
    if samples > 1 and temperature == 0:
        raise ApiError(422, f"samples: {samples} samples need a temperature > 0", "samples")
    if protocol not in PROTOCOLS:
        raise ApiError(
            422,
            f"protocol: unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}",
            "protocol",
        )
    if max_tokens > state.max_new_tokens_limit:
        raise ApiError(
            422,
            f"max_tokens: {max_tokens} is above this server's limit of {state.max_new_tokens_limit}",
            "max_tokens",
        )
    data = await image.read()
    return await state.until_disconnected(
        http,
        _locate(
            state, data, image.filename or "upload", protocol, max_tokens, temperature, samples, aggregate
        ),
    )
