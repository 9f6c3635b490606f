"""georeason: vision-language models that locate a photo by reasoning.

The core (``georeason.geo``, ``georeason.eval.metrics``, ``georeason.protocols``,
``georeason.rewards``) imports without torch; training, HF inference and serving
live behind the ``train``, ``serve`` and ``vllm`` extras.
"""

from georeason.types import GeoSample, Place, Prediction

__version__ = "0.1.0"

__all__ = ["GeoSample", "Place", "Prediction", "__version__"]
