"""Safety limits applied to every source: bytes read, pixels decoded, time spent waiting."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Bounds that protect against decompression bombs and endless or stalled downloads.

    Parameters
    ----------
    max_pixels
        Largest width × height decoded (checked from the header, before decoding). 200 MP is
        above any camera sensor sold today and well below what exhausts memory here.
    max_bytes
        Largest encoded file read or downloaded; a body longer than this is cut off.
    connect_timeout, read_timeout
        Seconds to wait for a connection, and between two chunks of a response.
    total_timeout
        Seconds a whole download may take, however steadily the server trickles.
    max_redirects
        Redirects followed before giving up.
    """

    max_pixels: int = 200_000_000
    max_bytes: int = 256 * 1024 * 1024
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_redirects: int = 5

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_bytes"):
            if getattr(self, name) <= 0:
                raise UsageError(f"limit {name} must be positive, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if getattr(self, name) <= 0:
                raise UsageError(
                    f"limit {name} must be positive seconds, got {getattr(self, name)}"
                )
        if self.max_redirects < 0:
            raise UsageError(f"limit max_redirects must be >= 0, got {self.max_redirects}")


DEFAULT_LIMITS = Limits()
