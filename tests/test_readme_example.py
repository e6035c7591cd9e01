"""The README's Python example, run as a user runs it: pasted verbatim into a plain script (no
``if __name__ == "__main__":`` guard), fed to ``python -`` as a notebook-like session, and typed
into an interactive interpreter — each a real subprocess, against a real folder and a real local
server standing in for example.com."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, Resource, encode, http_server

README = ROOT / "README.md"


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def picture(seed: int, size: tuple[int, int] = (1024, 768)):  # type: ignore[no-untyped-def]
    from samepix.demo import make_picture

    return make_picture(seed, size)


# What the README leaves to the reader (a list of URLs; two images `a` and `b`), defined first.
PRELUDE = """\
import samepix
urls = {urls!r}
a, b = "photo.png", "photos/p2.jpg"
"""


@pytest.fixture
def scene(tmp_path: Path):  # type: ignore[no-untyped-def]
    """photo.png, a folder `photos` of three pictures, urls.txt, and a server with the URLs."""
    (tmp_path / "photo.png").write_bytes(encode(picture(1), "PNG"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in (1, 2, 3):
        (photos / f"p{seed}.jpg").write_bytes(encode(picture(seed), "JPEG", quality=85))
    routes = {
        "/photo.jpg": Resource(encode(picture(1), "JPEG", quality=75), "image/jpeg", etag='"a"'),
        "/cat.jpg": Resource(encode(picture(2), "JPEG", quality=70), "image/jpeg", etag='"b"'),
        "/new.jpg": Resource(encode(picture(7), "JPEG", quality=80), "image/jpeg"),
    }
    with http_server(routes) as server:
        (tmp_path / "urls.txt").write_text(
            f"{server.url('/cat.jpg')}\n{server.url('/new.jpg')}\n", encoding="utf-8"
        )
        yield tmp_path, server


def example_source(server_base: str, block: str) -> str:
    urls = [f"{server_base}/photo.jpg", f"{server_base}/cat.jpg"]
    return PRELUDE.format(urls=urls) + block.replace("https://example.com", server_base)


def run_python(
    args: list[str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def check_ran_once(proc: subprocess.CompletedProcess[str], photos: Path) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
    # find() printed the match once: the script was not re-run by worker processes.
    lines = [line for line in proc.stdout.splitlines() if line.startswith("photos/p2.jpg ")]
    assert len(lines) == 1, proc.stdout
    assert (photos / "new.jpg").exists()  # the sync saved the one new picture


@pytest.mark.parametrize("how", ["plain-script", "stdin-session", "interactive"])
def test_readme_example_runs_verbatim(scene, how: str) -> None:  # type: ignore[no-untyped-def]
    folder, server = scene
    main_block = readme_python_blocks()[0]
    assert "samepix.Library(" in main_block and "__main__" not in main_block
    source = example_source(server.base, main_block)
    if how == "plain-script":
        (folder / "example.py").write_text(source, encoding="utf-8")
        proc = run_python(["example.py"], folder)
    elif how == "stdin-session":  # like a notebook: __main__ has no file
        proc = run_python(["-"], folder, stdin=source)
    else:  # typed at the >>> prompt: one statement at a time, a blank line ends each block
        typed = re.sub(r"\n(?=\S)", "\n\n", source) + "\n"
        proc = run_python(["-i", "-q"], folder, stdin=typed)
    check_ran_once(proc, folder / "photos")


def test_readme_private_address_block_refuses_loopback(scene) -> None:  # type: ignore[no-untyped-def]
    folder, server = scene
    block = readme_python_blocks()[1]
    assert "allow_private=False" in block
    source = "import samepix\n" + block.replace("https://example.com", server.base)
    (folder / "web.py").write_text(source, encoding="utf-8")
    proc = run_python(["web.py"], folder)
    assert proc.returncode == 1
    assert "samepix.errors.FetchError" in proc.stderr or "FetchError" in proc.stderr
    assert "127.0.0.1" in proc.stderr


def test_no_samepix_thread_outlives_a_call(tmp_path: Path) -> None:
    import threading

    import samepix

    before = {t.ident for t in threading.enumerate()}
    big = picture(4, (1600, 1200))  # many SSIM tiles: helper threads are used
    samepix.compare(big, encode(big, "JPEG", quality=80))
    with samepix.Library(tmp_path, workers=1) as library:
        library.update()
    left = [t.name for t in threading.enumerate() if t.ident not in before]
    assert left == []
