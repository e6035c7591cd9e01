"""``sync``: URL lists, the skip ladder (304 / bytes / same picture), names, --replace-better,
--dry-run, --log, a full disk, SIGKILL mid-run and two syncs at once. Real local HTTP servers
(bytes counted by the server itself), real SQLite files, real subprocesses."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samepix import Library, SyncLocked, SyncSummary
from samepix.errors import SyncError
from samepix.sync import _FolderLock, file_name, parse_url_list, sanitize_stem

from .helpers import Resource, Response, encode, http_server
from .helpers import run_cli as _run_cli

run_cli = functools.partial(_run_cli, text=True)

ROOT = Path(__file__).resolve().parents[1]


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


def jpeg(seed: int, quality: int = 90, size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(picture(seed, size), "JPEG", quality=quality)


def png(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(picture(seed, size), "PNG")


def half(seed: int, quality: int = 70) -> bytes:
    """The 320×240 picture ``seed`` at 160×120, as JPEG: the same picture, re-encoded."""
    pixels = np.asarray(Image.fromarray(picture(seed)).resize((160, 120), Image.LANCZOS))
    return encode(pixels, "JPEG", quality=quality)


def sync(folder: Path, urls: list[str], **options: Any) -> SyncSummary:
    with Library(folder, workers=1) as lib:
        return lib.sync(urls, **options)


def sync_decisions(url: str, db: Path, urls: list[str], **options: Any) -> dict[str, str]:
    """Sync into a store URL (its index in ``db``): each URL's last path part → its decision."""
    with Library(url, db=db, workers=1) as lib:
        summary = lib.sync(urls, **options)
    return {item.url.rsplit("/", 1)[-1]: item.decision for item in summary.items}


def stored(fs: Any, name: str) -> dict[str, bytes]:
    """The objects under ``name`` in an fsspec store, by their path below it."""
    return {k[len(name) + 1 :]: bytes(fs.cat(k)) for k in fs.find(name)}


def pictures_in(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file outside .samepix, temporary ``.part`` files aside
    (hidden, and removed by the next sync)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.parts[0] != ".samepix" and not path.name.endswith(".part"):
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def decisions(summary: SyncSummary) -> dict[str, str]:
    return {item.url.rsplit("/", 1)[-1]: item.decision for item in summary.items}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "sunset.png").write_bytes(png(1))
    (root / "harbour.jpg").write_bytes(jpeg(2))
    return root


# ---------------------------------------------------------------------------------------------
# URL lists


def test_url_list_blank_lines_comments_repeats_and_malformed() -> None:
    parsed = parse_url_list(
        [
            "# my pictures",
            "",
            "https://example.com/a.jpg",
            "   ",
            "  https://example.com/b.png  ",
            "https://example.com/a.jpg",
            "ftp://example.com/c.jpg",
            "not a url",
            "http://",
            "http://example.com:99999/x.jpg",
            "https://example.com/page#frag",
        ]
    )
    assert parsed.urls == (
        (3, "https://example.com/a.jpg"),
        (5, "https://example.com/b.png"),
        (11, "https://example.com/page#frag"),
    )
    assert [(r.line, r.first_line) for r in parsed.repeated] == [(6, 3)]
    reasons = {line: why for line, _, why in parsed.malformed}
    assert reasons[7] == "not an http(s) URL (ftp:)"
    assert reasons[8] == "contains white space"
    assert reasons[9] == "no host"
    assert "not a valid URL" in reasons[10]


def test_malformed_and_failing_urls_are_reported_and_the_others_continue(folder: Path) -> None:
    routes = {
        "/new.png": Resource(png(3), "image/png", etag='"n"'),
        "/page.jpg": Response(
            200, b"<!doctype html><html>oops</html>", {"Content-Type": "image/jpeg"}
        ),
    }
    with http_server(routes) as server:
        summary = sync(
            folder,
            [
                "mailto:me@example.com",
                server.url("/new.png"),
                server.url("/missing.jpg"),
                server.url("/page.jpg"),
                server.url("/new.png"),
            ],
        )
    assert [(i.line, i.decision) for i in summary.items] == [
        (1, "failed"),
        (2, "downloaded"),
        (3, "failed"),
        (4, "failed"),
    ]
    reasons = [i.reason for i in summary.failures]
    assert reasons[0].startswith("malformed URL: not an http(s) URL")
    assert reasons[1] == "HTTP 404 Not Found"
    assert "an HTML page, not an image" in reasons[2]
    assert [r.line for r in summary.repeated] == [5]
    assert server.hits["/new.png"] == 1  # the repeat is processed once
    assert not summary.ok and summary.failed == 3


# ---------------------------------------------------------------------------------------------
# The skip ladder


def test_second_sync_is_304_with_no_body_bytes(folder: Path) -> None:
    routes = {
        "/forest.png": Resource(png(3), "image/png", etag='"f1"'),
        "/sunset-small.jpg": Resource(half(1), "image/jpeg", etag='"s1"'),
    }
    with http_server(routes) as server:
        urls = [server.url("/forest.png"), server.url("/sunset-small.jpg")]
        first = sync(folder, urls)
        assert decisions(first) == {
            "forest.png": "downloaded",
            "sunset-small.jpg": "skipped-same-picture",
        }
        sent = server.body_bytes_sent
        assert sent == first.bytes_downloaded > 0
        second = sync(folder, urls)
        assert server.body_bytes_sent == sent  # the server's own count: nothing sent
    assert decisions(second) == {
        "forest.png": "skipped-unchanged",
        "sunset-small.jpg": "skipped-unchanged",
    }
    assert second.bytes_downloaded == 0
    assert all(h.get("if-none-match") for h in server.headers_of("/forest.png")[1:])
    # What stands for each URL: the saved file, and the local copy of the same picture.
    paths = {i.url.rsplit("/", 1)[-1]: i.path for i in second.items}
    assert paths == {"forest.png": folder / "forest.png", "sunset-small.jpg": folder / "sunset.png"}


def test_304_is_not_trusted_when_the_saved_file_is_gone(folder: Path) -> None:
    routes = {"/forest.png": Resource(png(3), "image/png", etag='"f1"')}
    with http_server(routes) as server:
        sync(folder, [server.url("/forest.png")])
        (folder / "forest.png").unlink()
        again = sync(folder, [server.url("/forest.png")])
        # No validators sent: a 304 could not be used, the body is needed.
        assert "if-none-match" not in server.headers_of("/forest.png")[1]
    assert decisions(again) == {"forest.png": "downloaded"}
    assert (folder / "forest.png").read_bytes() == png(3)


def test_skip_by_bytes_in_the_index(folder: Path) -> None:
    before = pictures_in(folder)
    with http_server({"/copy.jpg": Response(200, jpeg(2), {"Content-Type": "image/jpeg"})}) as s:
        summary = sync(folder, [s.url("/copy.jpg")])
    (item,) = summary.items
    assert (item.decision, item.verdict, item.path) == (
        "skipped-bytes",
        "identical",
        folder / "harbour.jpg",
    )
    assert item.reason.startswith("identical bytes already at harbour.jpg")
    assert pictures_in(folder) == before


def test_skip_same_picture_re_encoded_on_the_server(folder: Path) -> None:
    webp = encode(picture(2), "WEBP", quality=80)  # harbour.jpg, re-encoded as lossy WebP
    with http_server({"/harbour.webp": Response(200, webp, {"Content-Type": "image/webp"})}) as s:
        summary = sync(folder, [s.url("/harbour.webp")])
    (item,) = summary.items
    assert (item.decision, item.verdict, item.path) == (
        "skipped-same-picture",
        "same",
        folder / "harbour.jpg",
    )
    assert "SSIM" in item.reason
    assert sorted(pictures_in(folder)) == ["harbour.jpg", "sunset.png"]


def test_new_picture_is_saved_with_the_sniffed_extension_and_indexed(folder: Path) -> None:
    routes = {"/render.php": Response(200, png(4), {"Content-Type": "application/octet-stream"})}
    with http_server(routes) as server:
        summary = sync(folder, [server.url("/render.php?id=4&size=large")])
    (item,) = summary.items
    assert (item.decision, item.path) == ("downloaded", folder / "render.png")
    assert (folder / "render.png").read_bytes() == png(4)
    with Library(folder) as lib:  # indexed in the same step: the next update has nothing to do
        assert [e.path for e in lib.index.entries()] == ["harbour.jpg", "render.png", "sunset.png"]
        assert not lib.update().changed
        assert lib.find(folder / "render.png", update=False).found


def test_decisions_follow_the_list_not_the_fastest_server(folder: Path) -> None:
    # Lines 1 and 2 hold one new picture (PNG, then a JPEG of it), lines 3 and 4 one new file
    # (the same bytes twice). The earlier line of each pair answers slowly: still, the earlier
    # line is saved and the later one skipped, as a run with one download at a time would do.
    def slow(body: bytes) -> Any:
        def answer(handler: http.server.BaseHTTPRequestHandler) -> Response:
            time.sleep(0.4)
            return Response(200, body)

        return answer

    routes = {
        "/first.png": slow(png(5)),
        "/second.jpg": Response(200, jpeg(5, quality=80)),
        "/third.jpg": slow(jpeg(6)),
        "/fourth.jpg": Response(200, jpeg(6)),
    }
    with http_server(routes) as server:
        urls = [server.url(p) for p in ("/first.png", "/second.jpg", "/third.jpg", "/fourth.jpg")]
        summary = sync(folder, urls, concurrency=4)
    assert decisions(summary) == {
        "first.png": "downloaded",
        "second.jpg": "skipped-same-picture",
        "third.jpg": "downloaded",
        "fourth.jpg": "skipped-bytes",
    }
    assert sorted(pictures_in(folder)) == ["first.png", "harbour.jpg", "sunset.png", "third.jpg"]


def test_a_bug_in_one_download_is_raised_not_waited_for(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decisions wait for line 1; if its download task dies of a bug (not a failed URL), the
    # sync must raise it rather than wait for ever with a full window behind it.
    from samepix.fetch import Fetcher

    real = Fetcher.aget

    async def aget(self: Fetcher, url: str, **kwargs: Any) -> Any:
        if url.endswith("/0.jpg"):
            raise RuntimeError("a bug")
        return await real(self, url, **kwargs)

    monkeypatch.setattr(Fetcher, "aget", aget)
    routes: dict[str, Any] = {f"/{k}.jpg": Response(200, jpeg(10 + k)) for k in range(12)}
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with http_server(routes) as server:
                sync(folder, [server.url(f"/{k}.jpg") for k in range(12)], concurrency=1)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert outcome and isinstance(outcome[0], RuntimeError), outcome


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("url", "disposition", "fmt", "expected"),
    [
        ("http://h/../../etc/passwd", None, "PNG", ("passwd", ".png")),
        ("http://h/a/%2e%2e%2f%2e%2e%2fetc%2fpasswd.jpg", None, "JPEG", ("passwd", ".jpg")),
        ("http://h/a%5C..%5Cwin.ini", None, "GIF", ("win", ".gif")),
        ("http://h/bad%07name%0A%1b.jpg", None, "JPEG", ("bad_name__", ".jpg")),
        ("http://h/zero%E2%80%8Bwidth.png", None, "PNG", ("zero_width", ".png")),
        ("http://h/CON.jpg", None, "JPEG", ("_CON", ".jpg")),
        ("http://h/nul", None, "PNG", ("_nul", ".png")),
        ("http://h/com1.tar", None, "WEBP", ("_com1", ".webp")),
        ("http://h/img.php?id=5&name=../../x", None, "PNG", ("img", ".png")),
        ("http://h/pic.jpeg", None, "JPEG", ("pic", ".jpeg")),
        ("http://h/pic.jpeg", None, "PNG", ("pic", ".png")),
        ("http://h/.hidden.jpg", None, "JPEG", ("hidden", ".jpg")),
        ("http://h/..", None, "JPEG", ("h", ".jpg")),
        ("http://example.com/", None, "JPEG", ("example.com", ".jpg")),
        ("http://h/a%3Ab%2Ac%7Cd.jpg", None, "JPEG", ("a_b_c_d", ".jpg")),
        ("http://h/dl", 'attachment; filename="../../evil name.gif"', "GIF", ("evil name", ".gif")),
        ("http://h/dl", "attachment; filename*=UTF-8''%C3%A9t%C3%A9.jpg", "JPEG", ("été", ".jpg")),
        ("http://h/dl", 'inline; filename="sneaky.exe"', "PNG", ("sneaky", ".png")),
        ("http://h/dl", "attachment", "PNG", ("dl", ".png")),
    ],
    ids=[
        "traversal-dotdot",
        "traversal-encoded",
        "traversal-backslash",
        "control-chars",
        "format-char",
        "reserved-CON",
        "reserved-nul-no-ext",
        "reserved-com1-with-ext",
        "query-string-ignored",
        "own-extension-kept",
        "extension-follows-format",
        "leading-dot",
        "only-dots",
        "no-path",
        "windows-forbidden-chars",
        "disposition-traversal",
        "disposition-rfc5987",
        "disposition-wrong-extension",
        "disposition-without-name",
    ],
)
def test_file_names(url: str, disposition: str | None, fmt: str, expected: tuple[str, str]) -> None:
    assert file_name(url, disposition, fmt) == expected


def test_long_names_are_cut_at_a_character_boundary() -> None:
    stem = sanitize_stem("é" * 300)
    assert len(stem.encode()) <= 120 and stem == "é" * 60


def test_names_end_to_end_collisions_get_suffixes_and_stay_inside(folder: Path) -> None:
    (folder / "img.png").write_bytes(b"not even an image, but somebody's file")
    routes = {
        "/download.php": Response(
            200, png(5), {"Content-Disposition": 'attachment; filename="../../evil.png"'}
        ),
        "/img.php": lambda h: Response(200, png(6) if "id=6" in h.path else png(7)),
        "/a/cat.jpg": Response(200, jpeg(8)),
        "/b/cat.jpg": Response(200, jpeg(9)),
    }
    with http_server(routes) as server:
        urls = [
            server.url("/download.php?id=1"),
            server.url("/img.php?id=6"),
            server.url("/img.php?id=7"),
            server.url("/a/cat.jpg"),
            server.url("/b/cat.jpg"),
        ]
        summary = sync(folder, urls, concurrency=1)
    assert all(i.decision == "downloaded" for i in summary.items), summary.failures
    names = sorted(pictures_in(folder))
    assert names == [
        "cat-1.jpg",
        "cat.jpg",
        "evil.png",
        "harbour.jpg",
        "img-1.png",
        "img-2.png",
        "img.png",
        "sunset.png",
    ]
    assert (folder / "img.png").read_bytes().startswith(b"not even")  # never overwritten
    assert not (folder.parent / "evil.png").exists()


# ---------------------------------------------------------------------------------------------
# --replace-better


@pytest.mark.parametrize(
    ("local", "remote", "new_name"),
    [
        (("JPEG", 70, (320, 240)), ("PNG", None, (640, 480)), "p.png"),
        (("JPEG", 60, (640, 480)), ("JPEG", 95, (640, 480)), "p.jpg"),
    ],
    ids=["larger-lossless", "higher-jpeg-quality-same-size"],
)
def test_replace_better_keeps_the_old_file(
    tmp_path: Path, local: tuple[str, Any, Any], remote: tuple[str, Any, Any], new_name: str
) -> None:
    def make(spec: tuple[str, Any, Any]) -> bytes:
        fmt, quality, size = spec
        pixels = np.asarray(Image.fromarray(picture(5, (640, 480))).resize(size, Image.LANCZOS))
        return encode(pixels, fmt, quality=quality) if quality else encode(pixels, fmt)

    folder = tmp_path / "lib"
    folder.mkdir()
    old = make(local)
    (folder / "p.jpg").write_bytes(old)
    new = make(remote)
    with http_server({"/p-best": Response(200, new)}) as server:
        plain = sync(folder, [server.url("/p-best")])
        assert decisions(plain) == {"p-best": "skipped-same-picture"}
        summary = sync(folder, [server.url("/p-best")], replace_better=True)
    (item,) = summary.items
    assert item.decision == "replaced", item.reason
    assert item.path == folder / new_name and item.verdict in ("same", "identical")
    assert item.kept == folder / ".samepix" / "replaced" / "p.jpg"
    assert item.kept.read_bytes() == old
    assert pictures_in(folder) == {new_name: hashlib.sha256(new).hexdigest()}
    with Library(folder) as lib:
        assert [e.path for e in lib.index.entries()] == [new_name]
        assert not lib.update().changed


def test_replace_better_skips_a_worse_copy(folder: Path) -> None:
    small = half(1, quality=60)
    with http_server({"/small.jpg": Response(200, small)}) as server:
        summary = sync(folder, [server.url("/small.jpg")], replace_better=True)
    assert decisions(summary) == {"small.jpg": "skipped-same-picture"}
    assert not (folder / ".samepix" / "replaced").exists()


# ---------------------------------------------------------------------------------------------
# --dry-run, --log, the CLI


def test_dry_run_writes_nothing(folder: Path) -> None:
    routes = {
        "/new.png": Resource(png(3), "image/png", etag='"n"'),
        "/new-again.png": Resource(png(3), "image/png", etag='"n"'),
        "/copy.jpg": Resource(jpeg(2), "image/jpeg", etag='"c"'),
    }
    before = pictures_in(folder)
    with http_server(routes) as server:
        urls = [server.url(p) for p in routes]
        dry = sync(folder, urls, dry_run=True, concurrency=1)
        assert [(i.decision, i.path) for i in dry.items] == [
            ("downloaded", folder / "new.png"),
            ("skipped-bytes", folder / "new.png"),  # as the real run would decide
            ("skipped-bytes", folder / "harbour.jpg"),
        ]
        assert dry.dry_run and "would save as new.png" in dry.items[0].reason
        assert pictures_in(folder) == before
        assert not (folder / ".samepix" / "fetch-state.sqlite3").exists()
        real = sync(folder, urls, concurrency=1)  # nothing was remembered: a full run
    assert decisions(real) == decisions(dry)
    assert sorted(pictures_in(folder)) == ["harbour.jpg", "new.png", "sunset.png"]


def test_cli_sync_log_json_and_exit_status(folder: Path, tmp_path: Path) -> None:
    routes = {
        "/forest.png": Resource(png(3), "image/png", etag='"f"'),
        "/copy.jpg": Resource(jpeg(2), "image/jpeg", etag='"c"'),
    }
    log = tmp_path / "sync.jsonl"
    with http_server(routes) as server:
        listing = "\n".join(
            ["# list", server.url("/forest.png"), "", server.url("/copy.jpg"), "nope"]
        )
        urls = tmp_path / "urls.txt"
        urls.write_text(listing + "\n" + server.url("/forest.png") + "\n")
        proc = run_cli("sync", str(urls), str(folder), "--log", str(log), "--json")
        assert proc.returncode == 2, proc.stderr  # "nope" failed; the others were handled
        assert proc.stderr.strip() == (
            "error: 1 of 3 URLs failed (listed above); fix the malformed line in the list"
        )
        data = json.loads(proc.stdout)
        assert (data["downloaded"], data["skipped_bytes"], data["failed"]) == (1, 1, 1)
        assert data["repeated"] == [{"line": 6, "url": server.url("/forest.png"), "first_line": 2}]
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        assert {r["decision"] for r in rows} == {
            "downloaded",
            "skipped-bytes",
            "failed",
            "repeated",
        }
        for row in rows:
            assert {"url", "decision", "reason", "path", "verdict", "bytes"} <= set(row)
        saved = next(r for r in rows if r["decision"] == "downloaded")
        assert saved["path"] == str(folder / "forest.png") and saved["bytes"] == len(png(3))

        # stdin, human output; every URL handled: exit 0
        good = "\n".join([server.url("/forest.png"), server.url("/copy.jpg")])
        proc = run_cli("sync", "-", str(folder), "--verbose", stdin=good)
    assert proc.returncode == 0, proc.stderr
    assert "skipped-unchanged: " in proc.stdout
    assert "downloaded 0, replaced 0, skipped 2 unchanged" in proc.stdout
    assert "0 B downloaded" in proc.stdout


def test_cli_sync_bad_list_file_is_one_line_error(folder: Path, tmp_path: Path) -> None:
    proc = run_cli("sync", str(tmp_path / "absent.txt"), str(folder))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# A full disk


def noise_png(seed: int, side: int = 900) -> bytes:
    rng = np.random.default_rng(seed)  # noise does not compress: about 3 bytes a pixel
    return encode(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "PNG", compress_level=0)


def test_full_disk_rlimit_fsize_gives_a_clear_error_and_no_partial_file(
    folder: Path, tmp_path: Path
) -> None:
    big = noise_png(1)  # ~2.4 MB, over the 1 MB limit; the index and state files stay under it
    assert len(big) > 2_000_000
    urls = tmp_path / "urls.txt"

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed

    with http_server({"/big.png": Response(200, big, {"Content-Type": "image/png"})}) as server:
        urls.write_text(server.url("/big.png") + "\n")
        proc = run_cli("sync", str(urls), str(folder), preexec_fn=limit_file_size)
        assert proc.returncode == 2
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"error: {folder / 'big.png'}: cannot write (File too large)")
        assert "nothing partial was left" in line
        assert sorted(p.name for p in folder.iterdir()) == [".samepix", "harbour.jpg", "sunset.png"]
        proc = run_cli("sync", str(urls), str(folder))  # space again: it continues
    assert proc.returncode == 0, proc.stderr
    assert (folder / "big.png").read_bytes() == big


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_tiny_tmpfs(tiny_tmpfs: Path) -> None:
    folder = tiny_tmpfs / "lib"
    folder.mkdir()
    (folder / "sunset.png").write_bytes(png(1))
    small, big = png(3), noise_png(2, 1100)  # ~3.6 MB: more than the 3 MB file system
    routes = {"/small.png": Response(200, small), "/big.png": Response(200, big)}
    with http_server(routes) as server, pytest.raises(SyncError) as caught:
        sync(folder, [server.url("/small.png"), server.url("/big.png")], concurrency=1)
    assert "cannot write (No space left on device)" in str(caught.value)
    assert sorted(pictures_in(folder)) == ["small.png", "sunset.png"]  # saved before: kept
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


# ---------------------------------------------------------------------------------------------
# SIGKILL mid-run, two syncs at once


class SlowResource(Resource):
    """A Resource whose body trickles out (``delay`` seconds in all) and that logs each status."""

    def __init__(self, body: bytes, etag: str, delay: float) -> None:
        super().__init__(body, "image/png", etag=etag, ranges=False)
        self.delay = delay
        self.statuses: list[int] = []

    def __call__(self, handler: http.server.BaseHTTPRequestHandler) -> Response | None:
        response = super().__call__(handler)
        self.statuses.append(response.status)
        if response.status != 200 or self.delay <= 0:
            return response
        handler.send_response(200)
        for key, value in {**response.headers, "Content-Length": str(len(self.body))}.items():
            handler.send_header(key, value)
        handler.end_headers()
        step = max(1, len(self.body) // 10)
        for start in range(0, len(self.body), step):
            handler.wfile.write(self.body[start : start + step])
            handler.wfile.flush()
            time.sleep(self.delay / 10)
        return None


def slow_site(delay: float, seeds: range) -> dict[str, SlowResource]:
    return {f"/p{seed}.png": SlowResource(png(seed), f'"e{seed}"', delay) for seed in seeds}


def start_sync(urls: Path, folder: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "samepix", "sync", str(urls), str(folder), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    def fresh(name: str) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "sunset.png").write_bytes(png(1))
        return root

    killed, reference = fresh("killed"), fresh("reference")
    site = slow_site(0.6, range(10, 18))
    site["/copy.png"] = SlowResource(png(1), '"c"', 0.6)  # same bytes as sunset.png
    with http_server(dict(site)) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(server.url(p) for p in site) + "\n")
        proc = start_sync(urls, killed, "--concurrency", "3")
        try:
            # Kill once two pictures are in place and others are still streaming in.
            wait_for(lambda: len(pictures_in(killed)) >= 3)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done_before = pictures_in(killed)
        statuses_at_kill = {path: len(r.statuses) for path, r in site.items()}
        assert any(r.statuses == [200] for r in site.values()), "nothing was mid-download"
        for name in done_before:  # what is in place is complete
            with Image.open(killed / name) as im:
                im.load()
        stale = killed / ".p99.png.abcd1234.part"  # as a kill during a write would leave it
        stale.write_bytes(b"partial")

        for resource_ in site.values():
            resource_.delay = 0
        proc = start_sync(urls, killed)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        resumed = {path: r.statuses[statuses_at_kill[path] :] for path, r in site.items()}
        uninterrupted = start_sync(urls, reference)
        _, err = uninterrupted.communicate(timeout=120)
        assert uninterrupted.returncode == 0, err

    assert not stale.exists()
    assert not [p for p in killed.rglob("*.part")]
    assert pictures_in(killed) == pictures_in(reference)
    assert len(pictures_in(killed)) == 9  # sunset + 8 new; the byte copy was skipped
    # Completed downloads were not fetched again: asked with validators, answered 304.
    for name in done_before:
        if name == "sunset.png":
            continue
        assert resumed[f"/{name}"] == [304], (name, site[f"/{name}"].statuses)


def test_two_syncs_at_once_the_second_is_refused(folder: Path, tmp_path: Path) -> None:
    site = slow_site(0.4, range(20, 24))
    with http_server(dict(site)) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(server.url(p) for p in site) + "\n")
        first = start_sync(urls, folder, "--concurrency", "1")
        try:
            wait_for(lambda: sum(server.hits.values()) >= 1)  # it holds the lock by now
            second = run_cli("sync", str(urls), str(folder))
        finally:
            _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert second.returncode == 2
        assert second.stderr.startswith(
            f"error: another samepix sync is running on {folder} (pid {first.pid})"
        )
        again = run_cli("sync", str(urls), str(folder), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["skipped_unchanged"] == 4
    assert sorted(pictures_in(folder)) == [
        "harbour.jpg", "p20.png", "p21.png", "p22.png", "p23.png", "sunset.png"
    ]  # fmt: skip


def test_lock_in_process(folder: Path) -> None:
    holder = threading.Event()
    with _FolderLock(folder / ".samepix" / "sync.lock", folder):
        holder.set()
        with pytest.raises(SyncLocked, match=rf"\(pid {os.getpid()}\)"):
            sync(folder, ["http://127.0.0.1:9/x.png"])
    assert sync(folder, []).items == ()  # released: a later sync runs
