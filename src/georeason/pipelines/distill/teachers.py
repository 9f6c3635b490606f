"""The teachers: a backend asked for GLOBE answers and locatability judgements, and what is
stored of each answer (raw text, parse, place, distance, P(yes), entities)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from georeason.pipelines.distill.config import DistillConfig, TeacherSpec, finite
from georeason.pipelines.distill.entities import extract_entities

logger = logging.getLogger("georeason.pipelines")


def teacher_output(
    spec: TeacherSpec,
    completion: str | None,
    error: str | None,
    seconds: float | None,
    p_yes: float | None,
    judge_error: str | None,
    truth: Mapping[str, Any],
) -> dict[str, Any]:
    """The stored output of one teacher on one image: raw text, parse, place, distance, P(yes)."""
    from georeason.geo import haversine_km
    from georeason.match import place_by_names
    from georeason.protocols import get_protocol

    out: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "model": spec.model,
        "completion": completion,
        "error": error,
        "seconds": finite(seconds),
        "p_yes": finite(p_yes),
        "judge_error": judge_error,
        "format_ok": None,
        "parse_errors": [],
        "country": None,
        "country_code": None,
        "admin1": None,
        "city": None,
        "reasoning": None,
        "pred_lat": None,
        "pred_lon": None,
        "geocode_level": None,
        "distance_km": None,
        "entities": [],
    }
    if completion is None:
        return out
    pred = get_protocol("globe").parse(completion)
    out.update(
        format_ok=bool(pred.format_ok),
        parse_errors=list(pred.errors),
        country=pred.country or None,
        country_code=pred.country_code or None,
        admin1=pred.admin1 or None,
        city=pred.city or None,
        reasoning=(pred.reasoning or "").strip() or None,
    )
    # GLOBE answers name places: place the names (a stray coordinate pair is not the answer).
    hit = place_by_names(pred)
    if hit is not None:
        lat, lon = hit.lat, hit.lon
        out.update(pred_lat=float(lat), pred_lon=float(lon), geocode_level=hit.level)
        if finite(truth.get("lat")) is not None and finite(truth.get("lon")) is not None:
            out["distance_km"] = finite(haversine_km(float(truth["lat"]), float(truth["lon"]), lat, lon))
    out["entities"] = extract_entities(out["reasoning"] or "")
    return out


class Teacher:
    """A backend asked for GLOBE answers and locatability judgements."""

    def __init__(self, spec: TeacherSpec, backend: Any, max_pixels: int | None) -> None:
        from georeason.rewards.judges import BackendJudge

        self.spec = spec
        self.backend = backend
        self.judge = BackendJudge(backend, max_pixels=max_pixels)

    def run(
        self, requests: list[Any], images: list[Any], settings: Mapping[str, Any]
    ) -> list[tuple[str | None, str | None, float | None, float | None, str | None]]:
        """``(completion, error, seconds, p_yes, judge_error)`` per request; never raises."""
        from georeason.infer.base import Response

        try:
            responses = self.backend.generate(requests, **settings)
            if len(responses) != len(requests):
                raise RuntimeError(f"{len(responses)} responses for {len(requests)} requests")
        except Exception as e:  # the backend contract says never; a broken one costs this batch only
            logger.exception("teacher %s: generate raised", self.spec.name)
            responses = [Response(id=r.id, text=None, error=f"{type(e).__name__}: {e}") for r in requests]
        ok = [k for k, r in enumerate(responses) if r.text is not None and r.error is None]
        p_yes: dict[int, float | None] = {}
        judge_err: dict[int, str | None] = {}
        if ok:
            try:
                scores = self.judge([responses[k].text or "" for k in ok], images=[images[k] for k in ok])
            except Exception as e:  # a judge failure is recorded per item, never a silent 0
                scores = [e] * len(ok)
            for k, s in zip(ok, scores, strict=True):
                if isinstance(s, BaseException):
                    p_yes[k], judge_err[k] = None, f"{type(s).__name__}: {s}"
                else:
                    p_yes[k], judge_err[k] = float(s), None
        out = []
        for k, r in enumerate(responses):
            good = k in p_yes
            out.append(
                (
                    r.text if good else None,
                    None if good else (r.error or "no text returned"),
                    r.seconds,
                    p_yes.get(k),
                    judge_err.get(k) if good else "no completion to judge",
                )
            )
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.backend.close()


def make_teacher(spec: TeacherSpec, config: DistillConfig) -> Teacher:
    """Create the backend of one teacher (``hf``: loaded here; ``openai``: a client)."""
    from georeason.infer import get_backend

    if spec.kind == "hf":
        backend = get_backend(
            "hf", spec.model, batch_size=config.batch_size, device=config.device, max_pixels=config.max_pixels
        )
    else:
        backend = get_backend(
            "openai",
            spec.model,
            base_url=spec.base_url,
            concurrency=config.concurrency,
            timeout=config.timeout,
            max_pixels=config.max_pixels,
        )
    return Teacher(spec, backend, config.max_pixels)


__all__ = ["Teacher", "make_teacher", "teacher_output"]
