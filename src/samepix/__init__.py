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
import sys
import types
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
    "Fetcher": "fetch",
    "Retry": "fetch",
    "Download": "fetch",
    "Probe": "fetch",
    "probe": "fetch",
    "FetchState": "state",
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
    "WriteFailed": "errors",
    "Library": "library",
    "FindResult": "library",
    "Match": "library",
    "DuplicateGroup": "library",
    "DuplicateCopy": "library",
    "IndexSummary": "index",
    "Unreadable": "index",
    "SyncSummary": "sync",
    "SyncItem": "sync",
    "SyncError": "errors",
    "SyncLocked": "errors",
}

__all__ = [
    "DEFAULT_POLICY",
    "Comparison",
    "DecodeError",
    "Download",
    "DuplicateCopy",
    "DuplicateGroup",
    "FetchError",
    "FetchState",
    "Fetcher",
    "FindResult",
    "HashSet",
    "ImageHash",
    "ImageInfo",
    "IndexCorrupt",
    "IndexSummary",
    "Library",
    "LimitExceeded",
    "Limits",
    "Match",
    "Metrics",
    "Policy",
    "PreparedImage",
    "Probe",
    "Retry",
    "SamepixError",
    "SourceError",
    "StateError",
    "SyncError",
    "SyncItem",
    "SyncLocked",
    "SyncSummary",
    "Unreadable",
    "UsageError",
    "Verdict",
    "WriteFailed",
    "__version__",
    "compare",
    "load",
    "probe",
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
        SyncError,
        SyncLocked,
        UsageError,
        WriteFailed,
    )
    from .fetch import Download, Fetcher, Probe, Retry, probe
    from .hashes import HashSet, ImageHash
    from .index import IndexSummary, Unreadable
    from .library import DuplicateCopy, DuplicateGroup, FindResult, Library, Match
    from .limits import Limits
    from .policy import DEFAULT_POLICY, Policy
    from .state import FetchState
    from .sync import SyncItem, SyncSummary
    from .verdict import Verdict


class _Package(types.ModuleType):
    """Keeps public names from being shadowed by submodules of the same name.

    Importing ``samepix.compare`` (the module) makes the import system set the package
    attribute ``compare`` to that module, hiding the function ``samepix.compare``; the module
    stays reachable through ``sys.modules`` and ``from samepix.compare import ...``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'samepix' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
