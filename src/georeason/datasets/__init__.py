"""Datasets that evaluation and training read, in the GeoSample schema.

``benchmarks`` (IM2GPS3K, YFCC4K, MP16-Reason and user tables), ``synthetic``
(the procedural world) and ``fetch`` (downloads with a lock file). Submodules are
imported explicitly so that ``import georeason.datasets`` stays light (no
``datasets``, no PIL). This layer sits below ``eval``; nothing here imports it.
"""
