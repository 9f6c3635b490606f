"""Pipelines that build training sets: ``label`` (place levels from GPS),
``select`` (Geo-R's hard-sample selection) and ``distill`` (GLOBE's multi-teacher
distillation). They sit above ``eval`` (they read its runs) and below ``train``.
"""
