"""samepix: is the image at this URL already on my disk?

A calibrated, explained verdict (identical / same / similar / different) on whether two images
show the same picture, from a ladder of checks that stops as soon as it can decide.

>>> import samepix
>>> result = samepix.compare("photo.png", "https://example.com/photo.jpg")  # doctest: +SKIP
>>> result.verdict, result.reasons                                          # doctest: +SKIP

Heavy modules (numpy, OpenCV, Pillow, httpx) load on first use, so importing samepix — and
``samepix --help`` — stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module that defines it; resolved lazily (PEP 562).
_EXPORTS = {
    "compare": "compare",
    "load": "compare",
    "Comparison": "compare",
    "Metrics": "compare",
    "PreparedImage": "compare",
    "Policy": "policy",
    "DEFAULT_POLICY": "policy",
    "Verdict": "verdict",
    "Limits": "limits",
    "ImageInfo": "decode",
    "ImageHash": "hashes",
    "HashSet": "hashes",
    "SamepixError": "errors",
    "SourceError": "errors",
    "FetchError": "errors",
    "DecodeError": "errors",
    "LimitExceeded": "errors",
    "UsageError": "errors",
    "StateError": "errors",
    "IndexCorrupt": "errors",
}

__all__ = [
    "DEFAULT_POLICY",
    "Comparison",
    "DecodeError",
    "FetchError",
    "HashSet",
    "ImageHash",
    "ImageInfo",
    "IndexCorrupt",
    "LimitExceeded",
    "Limits",
    "Metrics",
    "Policy",
    "PreparedImage",
    "SamepixError",
    "SourceError",
    "StateError",
    "UsageError",
    "Verdict",
    "__version__",
    "compare",
    "load",
]

if TYPE_CHECKING:
    from .compare import Comparison, Metrics, PreparedImage, compare, load
    from .decode import ImageInfo
    from .errors import (
        DecodeError,
        FetchError,
        IndexCorrupt,
        LimitExceeded,
        SamepixError,
        SourceError,
        StateError,
        UsageError,
    )
    from .hashes import HashSet, ImageHash
    from .limits import Limits
    from .policy import DEFAULT_POLICY, Policy
    from .verdict import Verdict


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'samepix' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
