"""GLOBE's MP16-Reason builder: distil reasoning from several teacher VLMs, keep what they agree on.

:func:`run_distill` asks every teacher (``hf`` or ``openai``, run concurrently) for
GLOBE's answer (reasoning, then ``country`` / ``city``, placed on the map by
:mod:`georeason.match`) and for its locatability judgement (``P(yes)`` from
log-probabilities; a teacher without them has no judgement, never a silent 0).
A sample is kept when ``min_agree`` teachers (default: all) name the same place and
are right (the country, and with ``truth_level="city"`` the city by name or within
``max_km``); every dropped sample gets one reason. The agreeing teacher closest to
the truth gives the ``reasoning``, and :func:`extract_entities` takes from it the
visual entities GLOBE's ``R_vis`` checks. Output: ``records.jsonl`` (one line per
image as it completes; a rerun resumes, and recomputes the decisions from the stored
teacher outputs), ``dataset/`` (what ``georeason train`` reads) and ``summary.json``.

The specification — each step, the drop reasons in order, the defaults and why, the
entity extractor, the output columns — is docs/distill.md.

The package, by role: :mod:`.config` (teachers, generation settings, filters),
:mod:`.teachers` (asking a teacher, storing its answer), :mod:`.entities` (the visual
entities of a reasoning text), :mod:`.filters` (keep or drop one image), :mod:`.inputs`
(the images and their truth) and :mod:`.run` (the resumable run and the dataset).
"""

from georeason.pipelines.distill.config import (
    DistillConfig,
    DistillError,
    FilterConfig,
    TeacherSpec,
    parse_teacher,
)
from georeason.pipelines.distill.entities import CLUE_LEXICON, extract_entities
from georeason.pipelines.distill.filters import DROP_REASONS, Decision, decide
from georeason.pipelines.distill.inputs import DistillInput, load_input
from georeason.pipelines.distill.run import DistillSummary, finalize, run_distill
from georeason.pipelines.distill.teachers import Teacher, make_teacher, teacher_output
from georeason.runs import RunMismatchError

__all__ = [
    "CLUE_LEXICON",
    "DROP_REASONS",
    "Decision",
    "DistillConfig",
    "DistillError",
    "DistillInput",
    "DistillSummary",
    "FilterConfig",
    "RunMismatchError",
    "Teacher",
    "TeacherSpec",
    "decide",
    "extract_entities",
    "finalize",
    "load_input",
    "make_teacher",
    "parse_teacher",
    "run_distill",
    "teacher_output",
]
