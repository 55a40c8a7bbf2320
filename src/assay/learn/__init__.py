"""Machine learning in the loop: embeddings (this package's ``embedders``,
heavy parts behind the ``assay[ml]`` extra) and the algorithms that use them.

Importing ``assay.learn`` loads no torch: models load when first used.
"""

from assay.learn.embedders import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_TEXT_MODEL,
    Embedder,
    get_embedder,
    register_embedder,
)

__all__ = ["DEFAULT_IMAGE_MODEL", "DEFAULT_TEXT_MODEL", "Embedder", "get_embedder", "register_embedder"]
