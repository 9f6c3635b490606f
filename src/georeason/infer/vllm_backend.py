"""The ``vllm`` backend: vLLM's offline engine in this process (optional extra ``[vllm]``).

For a served model use ``vllm serve`` and the ``openai`` backend instead; this
one avoids the HTTP hop for single-machine evaluation. The image goes in as a
data URL through ``LLM.chat`` (vLLM applies the model's own chat template and
image processor). Untested here (no vLLM on this machine's test setup): the
code follows vLLM's documented ``LLM.chat`` / ``SamplingParams`` API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from georeason.infer.base import (
    NO_TOKENS,
    YES_TOKENS,
    Backend,
    BackendError,
    Request,
    Response,
    check_request,
    check_sampling,
    logsumexp,
)


class VLLMBackend(Backend):
    """vLLM ``LLM`` engine. ``engine_options`` go to ``vllm.LLM`` (e.g. ``gpu_memory_utilization``)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        max_pixels: int | None = None,
        dtype: str = "auto",
        max_model_len: int | None = None,
        seed: int = 0,
        **engine_options: Any,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError(
                "the vllm backend needs vLLM: `pip install 'georeason[vllm]'` (or `pip install vllm`) on a "
                "machine with a supported GPU; or serve the model with `vllm serve` and use --backend openai"
            ) from e
        from georeason.models import resolve_model

        self.model_name = str(model)
        self.max_pixels = max_pixels
        options: dict[str, Any] = {"limit_mm_per_prompt": {"image": 1}, "dtype": dtype, "seed": seed}
        if max_model_len is not None:
            options["max_model_len"] = max_model_len
        if max_pixels is not None:
            options.setdefault("mm_processor_kwargs", {"max_pixels": max_pixels})
        options.update(engine_options)
        self.llm = LLM(model=resolve_model(model), **options)
        self.last_errors = []

    def _conversation(self, request: Request) -> list[dict[str, Any]]:
        from georeason.images import to_data_url

        out = []
        for message in request.messages:
            content = message.get("content")
            if isinstance(content, list):
                parts = []
                for part in content:
                    if part.get("type") == "image" and request.image is not None:
                        parts.append({"type": "image_url", "image_url": {"url": to_data_url(request.image)}})
                    else:
                        parts.append(part)
                out.append({"role": message["role"], "content": parts})
            else:
                out.append(message)
        return out

    def _chat(self, requests: list[Request], params: Any) -> list[Any]:
        """``LLM.chat`` on a batch; on failure, item by item (an exception instance marks a failed item)."""
        try:
            return list(self.llm.chat([self._conversation(r) for r in requests], params, use_tqdm=False))
        except Exception as e:
            if len(requests) == 1:
                return [e]
            return [self._chat([r], params)[0] for r in requests]

    def generate(
        self,
        requests: list[Request],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        n: int = 1,
    ) -> list[Response]:
        """See :meth:`Backend.generate`; ``n`` samples share the prompt's prefill (``SamplingParams.n``)."""
        from vllm import SamplingParams

        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        check_sampling(n, temperature)
        params = SamplingParams(
            max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed, n=n
        )
        out: list[Response | None] = [None] * len(requests)
        todo = []
        for i, r in enumerate(requests):
            problem = check_request(r)
            if problem:
                out[i] = Response(id=r.id, text=None, error=problem)
            else:
                todo.append(i)
        t0 = time.perf_counter()
        results = self._chat([requests[i] for i in todo], params) if todo else []
        seconds = (time.perf_counter() - t0) / max(1, len(todo))
        for i, res in zip(todo, results, strict=True):
            r = requests[i]
            if isinstance(res, BaseException):
                out[i] = Response(id=r.id, text=None, error=f"{type(res).__name__}: {res}", seconds=seconds)
            else:
                completion = res.outputs[0]
                out[i] = Response(
                    id=r.id,
                    text=completion.text,
                    seconds=seconds,
                    extra={
                        "finish_reason": completion.finish_reason,
                        "prompt_tokens": len(res.prompt_token_ids or []),
                        "completion_tokens": sum(len(c.token_ids) for c in res.outputs),
                    },
                    samples=[c.text for c in res.outputs] if n > 1 else [],
                )
        return [r for r in out if r is not None]

    def yes_no_logprobs(
        self,
        requests: list[Request],
        *,
        yes_tokens: Sequence[str] = YES_TOKENS,
        no_tokens: Sequence[str] = NO_TOKENS,
        top_logprobs: int = 20,
    ) -> list[tuple[float, float] | None]:
        """First-token top log-probs, as the ``openai`` backend reads them (GLOBE's judge)."""
        from vllm import SamplingParams

        yes, no = {t.strip() for t in yes_tokens}, {t.strip() for t in no_tokens}
        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=top_logprobs)
        out: list[tuple[float, float] | None] = [None] * len(requests)
        errors: list[str | None] = [None] * len(requests)
        todo = [i for i, r in enumerate(requests) if not check_request(r)]
        for i, r in enumerate(requests):
            if i not in todo:
                errors[i] = check_request(r)
        results = self._chat([requests[i] for i in todo], params) if todo else []
        for i, res in zip(todo, results, strict=True):
            if isinstance(res, BaseException):
                errors[i] = f"{type(res).__name__}: {res}"
                continue
            first = (res.outputs[0].logprobs or [{}])[0]
            pairs = [(str(lp.decoded_token or "").strip(), float(lp.logprob)) for lp in first.values()]
            py = [v for t, v in pairs if t in yes]
            pn = [v for t, v in pairs if t in no]
            if not py and not pn:
                errors[i] = f"no yes/no token among the top {len(pairs)} log-probabilities"
                continue
            out[i] = (logsumexp(py), logsumexp(pn))
        self.last_errors = errors
        return out

    def close(self) -> None:
        self.llm = None
