"""A self-contained demo: sample pictures, a local HTTP server on 127.0.0.1, and verdicts.

The pictures are made here (fractal-noise landscapes with shapes, deterministic), so the demo
needs no file from outside the package and no outside network.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["make_picture", "run_demo", "serve_folder"]


def make_picture(seed: int, size: tuple[int, int] = (768, 512)) -> np.ndarray:
    """A deterministic photo-like RGB picture (H×W×3 uint8) of ``size`` = (width, height).

    Smooth fractal-noise "landscape", objects with edges, and film-like grain: without the
    grain and edges the picture is far smoother than a photograph (mean local deviation ~1
    against ~20 for a Kodak photo), and every structure metric behaves unlike on real photos.
    """
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    field = np.zeros((height, width), np.float32)
    for octave in range(7):  # fractal noise: shading at every scale
        cells = 2 ** (octave + 2)
        noise = rng.standard_normal((cells, cells)).astype(np.float32)
        layer: np.ndarray = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        field += layer / (1.6**octave)
    field = (field - field.min()) / (field.max() - field.min())
    palette = rng.uniform(0, 255, (3, 3)).astype(np.float32)
    t = field[:, :, None]
    img = palette[0] * (1 - t) ** 2 + palette[1] * 2 * t * (1 - t) + palette[2] * t**2
    img += np.linspace(-30, 30, height, dtype=np.float32)[:, None, None]  # a sky-like gradient
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(30):  # objects with edges
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.integers(5, height // 6)), colour, -1, cv2.LINE_AA)
        else:
            corner = (
                centre[0] + int(rng.integers(10, 120)),
                centre[1] + int(rng.integers(10, 120)),
            )
            cv2.rectangle(img, centre, corner, colour, -1, cv2.LINE_AA)
    noise = rng.standard_normal((height, width)).astype(np.float32)
    grain: np.ndarray = cv2.GaussianBlur(noise, (0, 0), 0.7) * 14.0
    picture: np.ndarray = np.clip(img + grain[:, :, None], 0, 255).astype(np.uint8)
    return picture


def _encode(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **options)
    return out.getvalue()


def _exif_rotated_jpeg(pixels: np.ndarray) -> bytes:
    """The picture stored turned on its side with EXIF orientation 6, as phone cameras do."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    stored = np.ascontiguousarray(np.rot90(pixels, k=1))  # a viewer turns it back clockwise
    return _encode(stored, "JPEG", quality=88, exif=exif.tobytes())


def _resized(pixels: np.ndarray, scale: float) -> np.ndarray:
    from .align import resize_area

    h, w = pixels.shape[:2]
    return resize_area(pixels, (round(w * scale), round(h * scale)))


def _edited(pixels: np.ndarray) -> np.ndarray:
    """A local edit: one region painted over, the rest untouched."""
    import cv2

    out: np.ndarray = pixels.copy()
    h, w = out.shape[:2]
    cv2.rectangle(out, (w // 2, h // 3), (w // 2 + w // 6, h // 3 + h // 5), (250, 240, 20), -1)
    cv2.putText(out, "EDITED", (w // 10, h - h // 8), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255,) * 3, 5)
    return out


def build_demo_site(folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """Write the demo's library and web files; return (library, web root, URL descriptions)."""
    library, web = folder / "library", folder / "web"
    library.mkdir(parents=True, exist_ok=True)
    web.mkdir(parents=True, exist_ok=True)
    sunset, harbour, forest = make_picture(1), make_picture(2), make_picture(3)
    (library / "sunset.png").write_bytes(_encode(sunset, "PNG"))
    (library / "harbour.jpg").write_bytes(_encode(harbour, "JPEG", quality=92))
    served = {
        "sunset-small.jpg": (
            _encode(_resized(sunset, 0.5), "JPEG", quality=60),
            "sunset, half size, JPEG q60",
        ),
        "sunset-phone.jpg": (_exif_rotated_jpeg(sunset), "sunset, stored rotated + EXIF tag"),
        "harbour.webp": (_encode(harbour, "WEBP", quality=80), "harbour as lossy WebP"),
        "harbour-edited.jpg": (_encode(_edited(harbour), "JPEG", quality=92), "harbour, edited"),
        "forest.png": (_encode(forest, "PNG"), "a picture not in the library"),
    }
    for name, (data, _) in served.items():
        (web / name).write_bytes(data)
    return library, web, {name: what for name, (_, what) in served.items()}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_folder(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 (a free port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(*, folder: str | None = None, as_json: bool = False) -> int:
    """Compare every served URL with the local library and print what samepix decides."""
    from .compare import compare, load
    from .verdict import Verdict

    with contextlib.ExitStack() as stack:
        root = Path(folder) if folder else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        library, web, what = build_demo_site(root)
        base = stack.enter_context(serve_folder(web))
        local = [load(p) for p in sorted(library.iterdir())]
        if not as_json:
            print(f"library: {library} ({len(local)} pictures); serving {len(what)} URLs at {base}")
        rank = [Verdict.IDENTICAL, Verdict.SAME, Verdict.SIMILAR, Verdict.DIFFERENT]
        for name, description in what.items():
            url = f"{base}/{name}"
            remote = load(url)
            results = [compare(remote, mine) for mine in local]
            best = min(results, key=lambda r: (rank.index(r.verdict), -(r.metrics.ssim or 0)))
            local_name = Path(best.b.source).name
            if as_json:
                row = {"url": url, "what": description, "local": local_name, **best.to_dict()}
                print(json.dumps(row, ensure_ascii=False))
                continue
            answer = "already there" if best.is_match else "not there"
            print(f"\n{url}  ({description})")
            print(f"  {answer}: {best.verdict.value} vs {local_name}")
            for reason in best.reasons:
                print(f"    - {reason}")
    return 0
