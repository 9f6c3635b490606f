"""Training-set selection at MP-16 scale: Geo-R's hard set, diversity, difficulty.

:func:`select_table` runs up to four stages over a labelled table (missing place
labels are reverse-geocoded); every dropped row gets exactly one reason, counted in
the report:

1. **Difficulty** (``rollouts``): drop samples whose GRPO group rewards are flat
   (std <= ``std_eps``: zero advantage, nothing to learn); see :func:`load_rollouts`
   and :func:`convert_trl_completions`.
2. **Geo-R hard set** (``correctness``): drop every row within ``radius_km`` (exact
   great-circle distance; a KD-tree on unit vectors) of an image the base model
   already gets right.
3. **Caps** per country / admin1 / equal-area geocell.
4. **Fill** to ``target`` rows by water-filling quotas along ``balance_by``,
   favouring under-represented regions.

The report gives counts per stage, continent and country, and the entropy and Gini
coefficient over countries and geocells before and after. The specification (the
rollout log format, the chord bound, geocells, water-filling) is docs/select.md.

Modules by role: :mod:`~.config` (settings, reasons, error), :mod:`~.stats`
(entropy, Gini, water-filling, caps), :mod:`~.rollouts` (eval runs and GRPO rollout
logs), :mod:`~.table_io` (the table in and out), :mod:`~.core` (the stages and
:func:`run_select`), :mod:`~.report` (report and map).
"""

from __future__ import annotations

from georeason.pipelines.select.config import REASONS, SelectConfig, SelectError
from georeason.pipelines.select.core import SelectResult, run_select, select_table
from georeason.pipelines.select.report import build_report, plot_selection_map, render_markdown, report_paths
from georeason.pipelines.select.rollouts import (
    RolloutGroups,
    convert_trl_completions,
    load_correctness,
    load_rollouts,
    pick_hotspots,
)
from georeason.pipelines.select.stats import (
    balanced_sample,
    cap_groups,
    distribution,
    entropy_bits,
    gini,
    water_fill,
)
from georeason.pipelines.select.table_io import LoadedTable, load_table

__all__ = [
    "REASONS",
    "LoadedTable",
    "RolloutGroups",
    "SelectConfig",
    "SelectError",
    "SelectResult",
    "balanced_sample",
    "build_report",
    "cap_groups",
    "convert_trl_completions",
    "distribution",
    "entropy_bits",
    "gini",
    "load_correctness",
    "load_rollouts",
    "load_table",
    "pick_hotspots",
    "plot_selection_map",
    "render_markdown",
    "report_paths",
    "run_select",
    "select_table",
    "water_fill",
]
