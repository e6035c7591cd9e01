"""A query image's index descriptor: the hashes, thumbnail and facts an indexed file has.

Shared by :mod:`samepix.library` (``find`` describes its query) and :mod:`samepix.sync` (which
describes a download once, to search for it and then to index it), below both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .index import Descriptor, describe_blob
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .compare import PreparedImage

__all__ = ["describe_query", "use_descriptor"]


def describe_query(query: PreparedImage, limits: Limits = DEFAULT_LIMITS) -> Descriptor:
    """The query's index descriptor, computed as an indexed file's is, once per query.

    Kept on the query (with its hashes), so a sync that searches for a download and then indexes
    it as a new file describes it once.
    """
    cached = query.__dict__.get("_index_descriptor")
    if isinstance(cached, Descriptor):
        return cached
    desc = _describe_query(query, limits)
    query.__dict__["_index_descriptor"] = desc
    return desc


def use_descriptor(query: PreparedImage, desc: Descriptor) -> None:
    """Give ``query`` the descriptor :func:`describe_query` would compute for it, made
    elsewhere (a sync shard's worker described the same bytes): nothing is decoded again."""
    query.__dict__["_index_descriptor"] = desc
    query.adopt_hashes(desc.hashes)


def _describe_query(query: PreparedImage, limits: Limits) -> Descriptor:
    """The query's index descriptor, computed as an indexed file's is (and its hashes cached)."""
    if query.blob is not None:
        desc = describe_blob(query.blob, limits=limits)
    else:  # pixels given directly (array, PIL image): hash the normalised grey image
        import hashlib

        from PIL import Image

        from .decode import grey_pil
        from .hashes import hash_image
        from .index import THUMB_SIDE

        grey = grey_pil(query.decoded)
        info = query.decoded.info
        desc = Descriptor(
            sha256=hashlib.sha256(grey.tobytes()).hexdigest(),  # never equals a file's bytes
            format=None,
            width=info.width,
            height=info.height,
            mode=info.mode,
            lossless=None,
            jpeg_quality=None,
            hashes=hash_image(grey),
            thumb=grey.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes(),
        )
    query.adopt_hashes(desc.hashes)  # compare() reuses them instead of hashing again
    return desc
