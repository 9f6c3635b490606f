"""The ``hf`` backend: any Hugging Face image-text-to-text model, in process.

Batched generation the way decoder-only models need it:

- **left padding** (``processor.tokenizer.padding_side = "left"``): every row's
  last prompt token sits at the same position, so the first generated token of
  each row is conditioned on its own prompt and not on pad tokens (right padding
  makes batched greedy output differ from one-by-one output);
- **micro-batches** of ``batch_size`` requests (GPU memory bounds it, not the
  number of images in a run);
- **failure isolation**: if a micro-batch fails (an image the processor
  rejects, an out-of-memory error), it is retried item by item, so only the
  culprit gets an error Response and the other requests still complete.

Greedy decoding when ``temperature == 0`` (``do_sample=False``), else sampling
with ``temperature`` / ``top_p``; ``seed`` seeds torch before each micro-batch
(sampled output then depends on how requests are batched).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from georeason.infer.base import (
    NO_TOKENS,
    YES_TOKENS,
    Backend,
    Request,
    Response,
    check_request,
    check_sampling,
)

logger = logging.getLogger("georeason.infer")


def _stop_rows(batch: list[Request], should_stop: Callable[[Request], bool]) -> Any:
    """A transformers StoppingCriteria that ends row i when ``should_stop(batch[i])`` says so."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopRows(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = [bool(should_stop(r)) for r in batch]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_StopRows()])


class HFBackend(Backend):
    """Transformers backend.

    Args:
        model: local model folder or hub id (loaded by :func:`georeason.models.load_model`).
        batch_size: micro-batch size for ``generate`` and ``yes_no_logprobs``.
        max_pixels, min_pixels: image pixel budget; images above ``max_pixels`` are
            downscaled here too (for processors without a budget of their own).
        dtype: ``"auto"``, ``"bfloat16"``, ``"float32"``, ...
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        attn_implementation, trust_remote_code: passed to ``load_model``.
        model_obj, processor: an already loaded model and processor (then ``model``
            is only the name shown in responses).
    """

    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 8,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        dtype: Any = "auto",
        device: str = "auto",
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        model_obj: Any = None,
        processor: Any = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_pixels is not None and max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
        import torch

        self.model_name = str(model)
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        if model_obj is None or processor is None:
            from georeason.models import load_model

            model_obj, processor = load_model(
                model,
                dtype=dtype,
                max_pixels=max_pixels,
                min_pixels=min_pixels,
                attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code,
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model_obj.to(self.device).eval()
        self.processor = processor
        tokenizer = getattr(processor, "tokenizer", processor)
        # Left padding: see the module docstring. Set on the tokenizer (what the processor
        # pads with) and passed again at call time for processors that take it as a kwarg.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        gen_cfg = getattr(self.model, "generation_config", None)
        eos = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos_ids: set[int] = set(eos if isinstance(eos, list | tuple) else [eos]) - {None}
        self.last_errors = []

    # ------------------------------------------------------------------ inputs

    def _image(self, request: Request) -> Any:
        img = request.image
        if img is None:
            return None
        if img.mode != "RGB":
            img = img.convert("RGB")
        if self.max_pixels is not None and img.size[0] * img.size[1] > self.max_pixels:
            from PIL import Image

            from georeason.images import fit_image

            img = img.resize(fit_image(img.size, self.max_pixels), Image.Resampling.LANCZOS)
        return img

    def _inputs(self, requests: Sequence[Request]) -> Any:
        """Chat template + processor for a micro-batch, left-padded, on the device."""
        texts = [
            self.processor.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        images = [im for im in (self._image(r) for r in requests) if im is not None]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        inputs = self.processor(**kwargs)
        return inputs.to(self.device)

    # -------------------------------------------------------------- generation

    def generate(
        self,
        requests: list[Request],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        min_new_tokens: int = 0,
        top_logprobs: int | None = None,
        should_stop: Callable[[Request], bool] | None = None,
        n: int = 1,
    ) -> list[Response]:
        """See :meth:`Backend.generate` (``n`` samples run as ``num_return_sequences``: the
        prompt and the image are encoded once per request). Extensions used by ``georeason serve``:
        ``min_new_tokens`` (vLLM's ``min_tokens``: end-of-sequence is masked
        until then), ``top_logprobs`` (None: no log-probs; k >= 0: each
        Response's ``extra["logprobs"]`` lists, per generated token, its text,
        log-probability under the model and the k most likely alternatives, as
        the OpenAI API does) and ``should_stop`` (asked after every decoding step
        for each request of the batch; True ends that row there, with
        ``finish_reason == "length"`` -- the server's deadline and cancel check)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        check_sampling(n, temperature)
        if n > 1 and top_logprobs is not None:
            raise ValueError("top_logprobs with n > 1 samples is not supported by the hf backend")
        out: list[Response | None] = [None] * len(requests)
        todo: list[int] = []
        for i, r in enumerate(requests):
            problem = check_request(r)
            if problem is None:
                todo.append(i)
            else:
                out[i] = Response(id=r.id, text=None, error=problem)
        if not 0 <= min_new_tokens <= max_new_tokens:
            raise ValueError(f"min_new_tokens must be in [0, max_new_tokens], got {min_new_tokens}")
        if top_logprobs is not None and top_logprobs < 0:
            raise ValueError(f"top_logprobs must be >= 0, got {top_logprobs}")
        settings = {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "min_new_tokens": min_new_tokens,
            "top_logprobs": top_logprobs,
            "should_stop": should_stop,
            "n": n,
        }
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            for i, resp in zip(
                idx, self._generate_isolated([requests[i] for i in idx], settings), strict=True
            ):
                out[i] = resp
        return [r for r in out if r is not None]

    def _generate_isolated(self, batch: list[Request], settings: dict[str, Any]) -> list[Response]:
        try:
            return self._generate_batch(batch, **settings)
        except Exception as e:
            if len(batch) == 1:
                logger.warning("hf backend: request %s failed: %s", batch[0].id, e)
                return [
                    Response(
                        id=batch[0].id,
                        text=None,
                        error=f"{type(e).__name__}: {e}",
                        extra={"error_type": type(e).__name__},
                    )
                ]
            logger.warning("hf backend: batch of %d failed (%s); retrying item by item", len(batch), e)
            self._free_memory()
            return [self._generate_isolated([r], settings)[0] for r in batch]

    def _free_memory(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _generate_batch(
        self,
        batch: list[Request],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int | None,
        min_new_tokens: int = 0,
        top_logprobs: int | None = None,
        should_stop: Callable[[Request], bool] | None = None,
        n: int = 1,
    ) -> list[Response]:
        import torch

        t0 = time.perf_counter()
        inputs = self._inputs(batch)
        greedy = temperature == 0
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": not greedy,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if min_new_tokens:
            gen_kwargs["min_new_tokens"] = min_new_tokens
        if top_logprobs is not None:
            # Raw logits (before temperature / top-p), as OpenAI-compatible servers report them.
            gen_kwargs.update(output_logits=True, return_dict_in_generate=True)
        if greedy:
            # Override sampling defaults a checkpoint's generation_config may carry
            # (Qwen ships temperature 0.01 / top_k 1 etc.) so greedy means greedy.
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=None)
        if n > 1:
            gen_kwargs["num_return_sequences"] = n  # rows come out grouped: request 0's n, then 1's...
        if should_stop is not None:
            gen_kwargs["stopping_criteria"] = _stop_rows([r for r in batch for _ in range(n)], should_stop)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            result = self.model.generate(**inputs, **gen_kwargs)
        sequences = result.sequences if top_logprobs is not None else result
        step_logp = None
        if top_logprobs is not None:
            step_logp = torch.stack(
                [torch.log_softmax(x.float(), dim=-1) for x in result.logits], dim=1
            ).cpu()
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = sequences[:, prompt_len:].tolist()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        seconds = (time.perf_counter() - t0) / len(batch)
        responses = []
        for i, (r, n_prompt) in enumerate(zip(batch, prompt_tokens, strict=True)):
            texts: list[str] = []
            extra: dict[str, Any] = {"prompt_tokens": int(n_prompt), "completion_tokens": 0}
            for row in range(i * n, (i + 1) * n):
                tokens = new_tokens[row]
                # Cut at the first end-of-sequence token (rows that finished early are padded).
                cut = next((k for k, t in enumerate(tokens) if t in self._eos_ids), None)
                kept = tokens if cut is None else tokens[:cut]
                texts.append(self.tokenizer.decode(kept, skip_special_tokens=True))
                extra["completion_tokens"] += len(kept) + (1 if cut is not None else 0)
                if row == i * n:
                    extra["finish_reason"] = "stop" if cut is not None else "length"
                    if step_logp is not None and top_logprobs is not None:
                        extra["logprobs"] = self._token_logprobs(step_logp[row], kept, top_logprobs)
            responses.append(
                Response(
                    id=r.id,
                    text=texts[0],
                    seconds=seconds,
                    extra=extra,
                    samples=texts if n > 1 else [],
                )
            )
        return responses

    def _token_logprobs(self, logp: Any, tokens: list[int], k: int) -> list[dict[str, Any]]:
        """OpenAI's ``logprobs.content``: per token, its text, log-prob and top-k alternatives."""
        out = []
        for step, tok in enumerate(tokens):
            row = logp[step]
            entry: dict[str, Any] = {"token": self.tokenizer.decode([tok]), "logprob": float(row[tok])}
            if k:
                vals, ids = row.topk(min(k, row.shape[-1]))
                entry["top_logprobs"] = [
                    {"token": self.tokenizer.decode([int(i)]), "logprob": float(v)}
                    for v, i in zip(vals.tolist(), ids.tolist(), strict=True)
                ]
            else:
                entry["top_logprobs"] = []
            out.append(entry)
        return out

    # ----------------------------------------------------------- log-probs

    def _variant_ids(self, words: Sequence[str]) -> list[tuple[int, ...]]:
        seqs: list[tuple[int, ...]] = []
        for w in words:
            ids = tuple(self.tokenizer.encode(w, add_special_tokens=False))
            if ids and ids not in seqs:
                seqs.append(ids)
        return seqs

    def yes_no_logprobs(
        self,
        requests: list[Request],
        *,
        yes_tokens: Sequence[str] = YES_TOKENS,
        no_tokens: Sequence[str] = NO_TOKENS,
    ) -> list[tuple[float, float] | None]:
        """``(log P(yes), log P(no))`` of the answer after each prompt, by teacher forcing.

        Each spelling's probability is the product of its tokens' probabilities
        (a real checkpoint's tokenizer has "yes" as one token: one forward pass
        per micro-batch; a spelling split into several tokens costs one more
        forward pass per spelling). Each side is the log of the summed spellings.
        """
        yes_seqs, no_seqs = self._variant_ids(yes_tokens), self._variant_ids(no_tokens)
        if not yes_seqs or not no_seqs:
            raise ValueError("yes_tokens and no_tokens must each hold at least one non-empty word")
        if set(yes_seqs) & set(no_seqs):
            raise ValueError("a yes spelling and a no spelling tokenize identically")
        out: list[tuple[float, float] | None] = [None] * len(requests)
        errors: list[str | None] = [None] * len(requests)
        todo: list[int] = []
        for i, r in enumerate(requests):
            problem = check_request(r)
            if problem is None:
                todo.append(i)
            else:
                errors[i] = problem
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            self._logprobs_isolated([requests[i] for i in idx], idx, yes_seqs, no_seqs, out, errors)
        self.last_errors = errors
        return out

    def _logprobs_isolated(
        self,
        batch: list[Request],
        idx: list[int],
        yes_seqs: list[tuple[int, ...]],
        no_seqs: list[tuple[int, ...]],
        out: list[tuple[float, float] | None],
        errors: list[str | None],
    ) -> None:
        try:
            scores = self._sequence_logprobs(batch, yes_seqs + no_seqs)
        except Exception as e:
            if len(batch) == 1:
                errors[idx[0]] = f"{type(e).__name__}: {e}"
                return
            self._free_memory()
            for r, i in zip(batch, idx, strict=True):
                self._logprobs_isolated([r], [i], yes_seqs, no_seqs, out, errors)
            return
        import torch

        ny = len(yes_seqs)
        for row, i in enumerate(idx):
            ly = torch.logsumexp(scores[row, :ny], dim=0).item()
            ln = torch.logsumexp(scores[row, ny:], dim=0).item()
            out[i] = (float(ly), float(ln))

    def _sequence_logprobs(self, batch: list[Request], seqs: list[tuple[int, ...]]) -> Any:
        """Tensor [len(batch), len(seqs)]: log P(seq | prompt) for every prompt and sequence.

        Sequences are appended to the left-padded prompts (same tokens for all
        rows, so the padding stays on the left); the prompt's last position
        predicts the first token of every sequence, so all one-token spellings
        share the first forward pass.
        """
        import torch

        inputs = self._inputs(batch)
        scores = torch.full((len(batch), len(seqs)), -math.inf)
        singles = [k for k, s in enumerate(seqs) if len(s) == 1]
        multis = [k for k, s in enumerate(seqs) if len(s) > 1]
        with torch.inference_mode():
            if singles or not multis:
                logits = self.model(**inputs).logits[:, -1, :].float()
                logp = torch.log_softmax(logits, dim=-1).cpu()
                for k in singles:
                    scores[:, k] = logp[:, seqs[k][0]]
            for k in multis:
                cont = torch.tensor(seqs[k], device=self.device).unsqueeze(0).expand(len(batch), -1)
                ext = dict(inputs)
                ext["input_ids"] = torch.cat([inputs["input_ids"], cont], dim=1)
                ext["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(cont)], dim=1)
                if "mm_token_type_ids" in ext:  # some processors tag image tokens per position
                    ext["mm_token_type_ids"] = torch.cat(
                        [inputs["mm_token_type_ids"], torch.zeros_like(cont)], dim=1
                    )
                logits = self.model(**ext).logits.float()
                n, m = inputs["input_ids"].shape[1], len(seqs[k])
                # positions n-1 .. n+m-2 predict the continuation tokens
                logp = torch.log_softmax(logits[:, n - 1 : n + m - 1, :], dim=-1)
                tok = cont.unsqueeze(-1)
                scores[:, k] = logp.gather(-1, tok).squeeze(-1).sum(dim=1).cpu()
        return scores

    def close(self) -> None:
        self.model = None
        with contextlib.suppress(Exception):
            self._free_memory()
