"""The decode boundary: where failures of the imaging libraries become samepix errors.

Every call into Pillow (and its plugins), littlecms (``ImageCms``), OpenCV, simplejpeg and numpy
on untrusted pixels runs inside :func:`foreign_calls`, which

* turns what those libraries are documented or measured to raise into a
  :class:`~samepix.errors.DecodeError` (or :class:`~samepix.errors.LimitExceeded`) naming the file
  and the library's reason, with ``raise ... from`` so ``--debug`` still shows the cause;
* routes their warnings (Pillow's ``UserWarning`` about corrupt EXIF, truncated files, big
  images, ...) and Pillow's log records to the ``samepix`` logger instead of stderr;
* optionally (:func:`quiet_stderr`) catches what C libraries print on file descriptor 2
  (libtiff's own warning and error handlers and OpenCV's log write there) and logs it.

Exceptions of generic types (``TypeError``, ``IndexError``, ``KeyError``, ...) are translated
only when they were raised inside a third-party frame (Pillow's TIFF plugin raises ``TypeError``
on missing dimensions, its GIF plugin ``IndexError`` on damaged frames): the same type raised by
samepix's own code is a bug and propagates as one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from .errors import DecodeError, LimitExceeded

__all__ = ["describe_failure", "foreign_calls", "quiet_stderr", "route_library_warnings"]

log = logging.getLogger("samepix")

_PACKAGE_DIR = str(Path(__file__).resolve().parent)

# Raised by the decoders for bad data whatever the frame: Pillow's documented OSError ("image file
# is truncated", "broken data stream", decoder error -2, UnidentifiedImageError), ValueError,
# SyntaxError ("not a TIFF file"), EOFError; struct.error from header parsing; simplejpeg's
# ValueError; OpenCV's cv2.error is added lazily (importing cv2 costs ~100 ms).
_ALWAYS_FOREIGN: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
)
# Raised by Pillow's plugins on damaged files (measured, Pillow 13: TypeError "Missing
# dimensions" and IFDRational in TIFF, IndexError and KeyError in GIF/TIFF frame counting,
# RuntimeError from libavif via the AVIF plugin, found by fuzz/), and by numpy on absurd sizes;
# translated only when raised inside a third-party frame.
_FOREIGN_IF_RAISED_OUTSIDE: tuple[type[BaseException], ...] = (
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    ZeroDivisionError,
    OverflowError,
    RecursionError,
    NotImplementedError,
    RuntimeError,  # Pillow's AVIF plugin: "Failed to decode image: Missing or empty image item"
)


def _library_errors() -> tuple[type[BaseException], ...]:
    """Exception classes of the libraries that do not derive from the builtins above."""
    found: list[type[BaseException]] = []
    pil = sys.modules.get("PIL.ImageCms")
    if pil is not None:
        found.append(pil.PyCMSError)  # "cannot build transform" on corrupted ICC profiles
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        found.append(cv2.error)
    return tuple(found)


def _raised_outside_samepix(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is not samepix's own code."""
    tb: TracebackType | None = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    filename = last.tb_frame.f_code.co_filename
    return not filename.startswith(_PACKAGE_DIR)


def describe_failure(exc: BaseException, fmt: str | None) -> str:
    """``truncated FMT file (...)`` or ``corrupt FMT data (...)`` from a library's exception."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    what = f"{fmt} " if fmt else ""
    lowered = text.lower()
    if (
        "truncated" in lowered
        or "premature end" in lowered
        or "unexpected end" in lowered
        or isinstance(exc, EOFError)
    ):
        return f"truncated {what}file (the data ends early: {text})"
    return f"corrupt {what}data ({text})"


@contextlib.contextmanager
def foreign_calls(name: str, fmt: str | None = None, *, what: str = "") -> Iterator[None]:
    """Run third-party decoding calls; their failures become one-line samepix errors.

    ``name`` is the file or URL, ``fmt`` the format (for the message), ``what`` an optional
    stage ("ICC profile", "frames") put before the reason.
    """
    prefix = f"{name}: {what + ': ' if what else ''}"
    route_library_warnings()
    try:
        yield
    except (DecodeError, LimitExceeded):
        raise
    except MemoryError as exc:
        raise LimitExceeded(
            f"{prefix}not enough memory to decode the image; lower --max-memory or free memory"
        ) from exc
    except _ALWAYS_FOREIGN as exc:
        raise DecodeError(prefix + describe_failure(exc, fmt)) from exc
    except _FOREIGN_IF_RAISED_OUTSIDE as exc:
        if not _raised_outside_samepix(exc):
            raise  # samepix's own bug: let it show as one
        raise DecodeError(prefix + describe_failure(exc, fmt)) from exc
    except Exception as exc:
        if _is_bomb(exc):
            raise LimitExceeded(f"{prefix}{exc} (raise samepix's limit with --max-pixels)") from exc
        if isinstance(exc, _library_errors()):
            raise DecodeError(prefix + describe_failure(exc, fmt)) from exc
        raise


def _is_bomb(exc: BaseException) -> bool:
    image = sys.modules.get("PIL.Image")
    return image is not None and isinstance(exc, image.DecompressionBombError)


# ---------------------------------------------------------------------------------------------
# Warnings


_LIBRARY_DIRS: tuple[str, ...] = ()
_routing_lock = threading.Lock()


def route_library_warnings() -> None:
    """Once per process: warnings raised inside Pillow, OpenCV or numpy, and Pillow's log
    records, go to the ``samepix`` logger (debug level) instead of stderr; every other warning
    is shown as before.

    A hook on :func:`warnings.showwarning` rather than ``catch_warnings`` around each decode:
    that context manager swaps process-wide state and is not safe with decodes in threads.
    """
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS:
        return
    with _routing_lock:
        if _LIBRARY_DIRS:
            return
        dirs = []
        for module in ("PIL", "cv2", "numpy", "simplejpeg", "pillow_heif"):
            spec = sys.modules.get(module)
            file = getattr(spec, "__file__", None) if spec is not None else None
            if file:
                dirs.append(str(Path(file).resolve().parent))
        if "PIL" not in sys.modules:
            import PIL

            dirs.append(str(Path(PIL.__file__).resolve().parent))
        previous = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: object = None,
            line: str | None = None,
        ) -> None:
            if filename.startswith(_LIBRARY_DIRS):
                log.debug("%s: %s", category.__name__, message)
                return
            previous(message, category, filename, lineno, file, line)  # type: ignore[arg-type]

        _LIBRARY_DIRS = tuple(dirs)
        warnings.showwarning = show
        for name in ("PIL", "pillow_heif"):
            logging.getLogger(name).addHandler(_ToSamepixDebug())


class _ToSamepixDebug(logging.Handler):
    """Hands a library's log records (Pillow's TIFF reader calls ``logger.error`` on damaged
    headers) to the ``samepix`` logger at debug level.

    Being a handler on the library's own logger, it also keeps Python's last-resort handler
    from printing those records on stderr when the application configured no logging; records
    still propagate to the application's handlers when it has some.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a record whose arguments do not fit its format
            text = str(record.msg)
        log.debug("%s said: %s", record.name, text)


# ---------------------------------------------------------------------------------------------
# C libraries writing to stderr

_stderr_lock = threading.Lock()


@contextlib.contextmanager
def quiet_stderr(name: str) -> Iterator[None]:
    """Capture what C code writes to file descriptor 2 meanwhile, and log it at debug level.

    libtiff's default warning and error handlers print to stderr (``tempfile.tif: Using code
    not yet in table.``), beside the one line samepix promises; Pillow has no switch for them.
    OpenCV's image readers log why they refused a file there too (``[ERROR:0@0.085] ...``).
    The descriptor is process-wide, so this is held under a lock and used only around decodes
    that can reach libtiff or OpenCV's readers (decodes in threads take turns there); Python
    code writing to ``sys.stderr`` meanwhile is unaffected as long as it does not flush in
    between (it is logged too if it does).
    """
    with _stderr_lock:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no descriptor 2 (a daemon): nothing to quieten
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read(64 * 1024).decode("utf-8", "replace").strip()
                if text:
                    log.debug("%s: decoder said: %s", name, text)
