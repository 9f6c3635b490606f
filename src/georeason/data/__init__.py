"""Datasets in the GeoSample schema: benchmark loaders and the synthetic world.

Submodules are imported explicitly (``from georeason.data.synthetic import make_world``)
so that ``import georeason.data`` stays light (no ``datasets``, no PIL).
"""
