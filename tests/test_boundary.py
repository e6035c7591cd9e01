"""The decode boundary: third-party failures become one-line samepix errors, samepix's own bugs
do not; library warnings go to the ``samepix`` logger; C libraries' stderr is captured."""

from __future__ import annotations

import logging
import os
import struct
import warnings

import numpy as np
import pytest

from samepix.boundary import foreign_calls, quiet_stderr
from samepix.errors import DecodeError, LimitExceeded


def _pil_type_error() -> None:
    from PIL import TiffImagePlugin

    # Pillow's IFDRational in an integer context, as a damaged TIFF makes its plugin do.
    range(TiffImagePlugin.IFDRational(1, 2))  # type: ignore[call-overload]


def _pycms_error() -> None:
    from PIL import ImageCms

    ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
        "RGB",
        "NOT-A-MODE",
    )


def _cv2_error() -> None:
    import cv2

    cv2.resize(np.zeros((1, 64), np.uint8), (0, 0), fx=0, fy=0)


def _struct_error() -> None:
    struct.unpack_from("<H", b"\x00", 0)


def _pil_truncated() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "PNG")
    Image.open(io.BytesIO(buf.getvalue()[:-40])).load()


@pytest.mark.parametrize(
    ("raise_it", "words"),
    [
        pytest.param(_pil_type_error, "corrupt", id="pillow-typeerror"),
        pytest.param(_pycms_error, "corrupt", id="littlecms-pycmserror"),
        pytest.param(_cv2_error, "corrupt", id="opencv-error"),
        pytest.param(_struct_error, "corrupt", id="struct-error"),
        pytest.param(_pil_truncated, "truncated", id="pillow-truncated"),
        pytest.param(lambda: np.zeros((2, 2))[5], "corrupt", id="numpy-indexerror"),
    ],
)
def test_library_failures_become_decode_errors(raise_it: object, words: str) -> None:
    with pytest.raises(DecodeError) as caught, foreign_calls("pic.png", "PNG"):
        raise_it()  # type: ignore[operator]
    message = str(caught.value)
    assert message.startswith("pic.png: ") and words in message and "\n" not in message
    assert caught.value.__cause__ is not None  # --debug shows what the library said


def test_simplejpeg_value_error_becomes_a_decode_error() -> None:
    simplejpeg = pytest.importorskip("simplejpeg")
    with pytest.raises(DecodeError, match="corrupt JPEG"), foreign_calls("x.jpg", "JPEG"):
        simplejpeg.decode_jpeg(b"\xff\xd8\xff\xe0garbage")


def test_samepixs_own_bugs_are_not_hidden() -> None:
    from samepix import decode, limits

    # The same types the boundary translates from libraries, raised in samepix's own frames.
    with pytest.raises(TypeError), foreign_calls("x.png", "PNG"):
        limits._human("not a number")  # type: ignore[arg-type]
    with pytest.raises(AttributeError), foreign_calls("x.png", "PNG"):
        decode._reduce_to(None, 8)  # type: ignore[arg-type]


def test_memory_and_bomb_errors_are_limits() -> None:
    from PIL import Image

    with pytest.raises(LimitExceeded, match="memory"), foreign_calls("x.png"):
        raise MemoryError
    with pytest.raises(LimitExceeded, match="decompression bomb"), foreign_calls("x.png"):
        raise Image.DecompressionBombError("decompression bomb DOS attack")


def test_library_warnings_go_to_the_samepix_logger(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    caplog.set_level(logging.DEBUG, logger="samepix")
    hook = _routing_hook()
    pil_file = os.path.join(os.path.dirname(Image.__file__), "Image.py")
    hook("Corrupt EXIF data", UserWarning, pil_file, 1)  # type: ignore[operator]
    assert "Corrupt EXIF data" in caplog.text
    assert "Corrupt EXIF data" not in capsys.readouterr().err


def _routing_hook() -> object:
    """The routing hook, installed afresh (pytest swaps ``showwarning`` around each test)."""
    import samepix.boundary as boundary

    boundary._LIBRARY_DIRS = ()
    saved = warnings.showwarning
    try:
        boundary.route_library_warnings()
        return warnings.showwarning
    finally:
        warnings.showwarning = saved


def test_c_stderr_is_captured_and_logged(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="samepix")
    with quiet_stderr("x.tif"):
        os.write(2, b"tempfile.tif: Using code not yet in table.\n")
    assert capfd.readouterr().err == ""
    assert "Using code not yet in table" in caplog.text
