"""Issue 11, "everyday use": what a new user tripped over in the first hour, reproduced as it was
found — the real ``samepix`` command in a subprocess, a real folder, a real local server."""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .helpers import Resource, encode, http_server, one_line_error, run_cli

run = functools.partial(run_cli, text=True)


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 2. file modes --------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_written_files_get_the_mode_open_gives(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "old.jpg").write_bytes(encode(picture(1), "JPEG", quality=30))
    (folder / "other.jpg").write_bytes(encode(picture(3), "JPEG", quality=30))
    os.chmod(folder / "old.jpg", 0o644)
    os.chmod(folder / "other.jpg", 0o604)
    expected = 0o666 & ~umask
    routes = {
        "/new.jpg": Resource(encode(picture(2), "JPEG", quality=90), "image/jpeg"),
        "/better.jpg": Resource(encode(picture(1), "JPEG", quality=92), "image/jpeg"),
        "/better.png": Resource(encode(picture(3), "PNG"), "image/png"),
    }
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(
            "\n".join(server.url(p) for p in ("/new.jpg", "/better.jpg", "/better.png"))
        )
        proc = run("sync", str(urls), str(folder), "--replace-better", umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert mode(folder / "new.jpg") == expected  # a synced picture
    assert mode(folder / ".samepix" / "index.db-hashes.npy") == expected  # the index's side file
    assert (folder / ".samepix" / "replaced" / "old.jpg").exists()
    assert mode(folder / "old.jpg") == 0o644  # replaced by a better copy: keeps its mode
    assert not (folder / "other.jpg").exists()  # replaced by a PNG: renamed, mode kept
    assert mode(folder / "other.png") == 0o604
    heat = tmp_path / "heat.png"
    proc = run("compare", str(folder / "old.jpg"), str(folder / "new.jpg"), "--diff", str(heat),
               umask=umask)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert mode(heat) == expected


# -- 4. dry run writes nothing; read-only folders ----------------------------------------------


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime: what a write would change."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        out[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


class ReadOnly:
    """Makes a folder truly read-only: as root (whom permission bits do not stop) a tmpfs that
    is remounted read-only, else the permission bits. ``place`` copies a folder there (still
    writable), ``freeze`` makes it read-only."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.mount: Path | None = None
        self.placed: list[Path] = []

    def place(self, source: Path) -> Path:
        if os.geteuid() != 0:
            self.placed.append(source)
            return source
        self.mount = self.tmp_path / "ro-mount"
        self.mount.mkdir()
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(self.mount)],
                            capture_output=True, check=False)  # fmt: skip
        if ok.returncode != 0:
            self.mount = None
            pytest.skip(f"cannot mount a tmpfs here: {ok.stderr.decode().strip()}")
        shutil.copytree(source, self.mount / source.name)
        return self.mount / source.name

    def freeze(self) -> None:
        if self.mount is not None:
            subprocess.run(["mount", "-o", "remount,ro", str(self.mount)], check=True)
        for folder in self.placed:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode & ~0o222)

    def undo(self) -> None:
        if self.mount is not None:
            subprocess.run(["umount", "-l", str(self.mount)], check=False)
        for folder in self.placed:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[ReadOnly]:
    maker = ReadOnly(tmp_path)
    yield maker
    maker.undo()


@pytest.fixture
def library_and_server(tmp_path: Path) -> Iterator[tuple[Path, Path, Any]]:
    folder = tmp_path / "lib"
    folder.mkdir()
    for seed in (1, 2):
        (folder / f"p{seed}.jpg").write_bytes(encode(picture(seed), "JPEG", quality=90))
    routes = {
        "/p1.png": Resource(encode(picture(1), "PNG"), "image/png", etag='"1"'),
        "/new.jpg": Resource(encode(picture(5), "JPEG", quality=90), "image/jpeg", etag='"5"'),
    }
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{server.url('/p1.png')}\n{server.url('/new.jpg')}\n")
        yield folder, urls, server


@pytest.mark.parametrize("indexed", [False, True], ids=["no-index-yet", "indexed-and-synced"])
def test_sync_dry_run_writes_nothing_into_dir(library_and_server: Any, indexed: bool) -> None:
    folder, urls, _ = library_and_server
    if indexed:  # an index, a fetch state and validators from an earlier real sync
        (folder / "p2.jpg").rename(folder / "p2-renamed.jpg")
        assert run("sync", str(urls), str(folder)).returncode == 0
        (folder / "new.jpg").unlink()  # the dry run must notice, and still write nothing
    before = tree(folder)
    proc = run("sync", str(urls), str(folder), "--dry-run", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "would save as new.jpg" in proc.stdout
    assert tree(folder) == before  # no index.db, hashes, sync.lock, state file, picture


def test_sync_dry_run_on_a_read_only_folder(library_and_server: Any, read_only: ReadOnly) -> None:
    folder, urls, _ = library_and_server
    frozen = read_only.place(folder)
    assert run("index", str(frozen)).returncode == 0
    read_only.freeze()
    proc = run("sync", str(urls), str(frozen), "--dry-run", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "same picture" in proc.stdout and "would save as new.jpg" in proc.stdout
    line = one_line_error(run("sync", str(urls), str(frozen)), str(frozen))
    assert "--dry-run" in line  # the way out


def test_read_only_errors_name_db(
    library_and_server: Any, read_only: ReadOnly, tmp_path: Path
) -> None:
    folder, _, server = library_and_server
    frozen = read_only.place(folder)
    read_only.freeze()  # no index yet, and none can be made there
    query = server.url("/p1.png")
    for args in (["find", query, "--in", str(frozen)], ["dupes", str(frozen)]):
        line = one_line_error(run(*args), str(frozen))
        assert "--db PATH" in line, line
        assert "corrupt" not in line  # a read-only folder is not a damaged index
    elsewhere = str(tmp_path / "elsewhere.db")
    assert run("find", query, "--in", str(frozen), "--db", elsewhere).returncode == 0


def test_read_only_folder_with_an_index_is_searched(
    library_and_server: Any, read_only: ReadOnly
) -> None:
    folder, _, server = library_and_server
    frozen = read_only.place(folder)
    assert run("index", str(frozen)).returncode == 0
    read_only.freeze()
    proc = run("find", server.url("/p1.png"), "--in", str(frozen))
    assert proc.returncode == 0, proc.stderr


# -- 6. folders ------------------------------------------------------------------------------


def test_sync_creates_a_missing_destination(library_and_server: Any, tmp_path: Path) -> None:
    _, urls, _ = library_and_server
    target = tmp_path / "new" / "nested"
    line = one_line_error(run("sync", str(urls), str(target), "--dry-run"), str(target))
    assert "no such folder" in line and not target.exists()
    proc = run("sync", str(urls), str(target))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in target.iterdir() if p.is_file()) == ["new.jpg", "p1.png"]


def test_missing_path_and_file_are_told_apart(tmp_path: Path) -> None:
    missing, a_file = tmp_path / "nope", tmp_path / "file.jpg"
    a_file.write_bytes(encode(picture(1), "JPEG"))
    urls = tmp_path / "urls.txt"
    urls.write_text("")
    for args in (["index"], ["dupes"], ["find", str(a_file), "--in"]):
        one_line_error(run(*args, str(missing)), f"{missing}: no such folder")
        one_line_error(run(*args, str(a_file)), f"{a_file}: not a folder")
    one_line_error(run("sync", str(urls), str(a_file)), f"{a_file}: not a folder")


# -- 8. --diff -------------------------------------------------------------------------------


def red_fraction(picture_rgb: np.ndarray) -> float:
    r, g, b = (picture_rgb[:, :, i].astype(int) for i in range(3))
    return float(((r > 180) & (g < 90) & (b < 90)).mean())


def test_diff_heatmap_colours_follow_the_verdict(tmp_path: Path) -> None:
    from PIL import Image

    from .conftest import shared_file

    original = shared_file("kodak", "kodim23.png")
    pixels = np.asarray(Image.open(original).convert("RGB"))
    q30 = tmp_path / "q30.jpg"
    q30.write_bytes(encode(pixels, "JPEG", quality=30))
    heat = tmp_path / "same.png"
    proc = run("compare", str(original), str(q30), "--diff", str(heat))
    assert proc.returncode == 0 and proc.stdout.startswith("same:"), proc.stdout
    shown = np.asarray(Image.open(heat).convert("RGB"))
    h, w = pixels.shape[:2]
    assert shown.shape[0] > h  # a legend below the picture
    assert red_fraction(shown[:h, :w]) < 0.002  # `same` is not red all over (nor anywhere)
    edited = pixels.copy()
    edited[100:220, 200:360] = np.asarray(Image.open(shared_file("kodak", "kodim05.png")))[
        :120, :160
    ]
    (tmp_path / "edited.png").write_bytes(encode(edited, "PNG"))
    heat = tmp_path / "edited-heat.png"
    proc = run("compare", str(original), str(tmp_path / "edited.png"), "--diff", str(heat))
    assert proc.returncode == 1 and "local change" in proc.stdout, proc.stdout
    shown = np.asarray(Image.open(heat).convert("RGB"))
    assert red_fraction(shown[110:210, 210:350]) > 0.5  # the pasted patch is red
    assert red_fraction(shown[300:h, 400:w]) < 0.01  # the rest is not


@pytest.mark.parametrize(
    ("name", "magic"),
    [("h.png", b"\x89PNG"), ("h.jpg", b"\xff\xd8\xff"), ("h.JPEG", b"\xff\xd8\xff"),
     ("h.webp", b"RIFF"), ("h.tif", b"II*\x00")],
    ids=["png", "jpg", "JPEG-upper", "webp", "tif"],
)  # fmt: skip
def test_diff_writes_the_format_its_extension_names(
    tmp_path: Path, name: str, magic: bytes
) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    a.write_bytes(encode(picture(1), "PNG"))
    b.write_bytes(encode(picture(1), "JPEG", quality=60))
    proc = run("compare", str(a), str(b), "--diff", str(tmp_path / name))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / name).read_bytes().startswith(magic)


def test_diff_errors_keep_the_verdict(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    a.write_bytes(encode(picture(1), "PNG"))
    b.write_bytes(encode(picture(1), "JPEG", quality=60))
    folder = tmp_path / "out.png"
    folder.mkdir()  # a folder named like a picture
    proc = run("compare", str(a), str(b), "--diff", str(folder))
    assert proc.stdout.startswith("same: ")  # the verdict is printed first...
    one_line_error(proc, str(folder), "folder")  # ...then one error line, exit 2
    proc = run("compare", str(a), str(b), "--diff", str(folder), "--json")
    assert json.loads(proc.stdout)["verdict"] == "same" and "diff" not in json.loads(proc.stdout)
    one_line_error(proc, str(folder))
    proc = run("compare", str(a), str(b), "--diff", str(tmp_path / "heat.xyz"))
    one_line_error(proc, "heat.xyz", "'.xyz' names no image format", ".png")
    assert proc.stdout == "" and not (tmp_path / "heat.xyz").exists()


# -- 5. dupes shows progress in every phase on a terminal, nothing when piped ------------------


def run_with_tty_stderr(*args: str) -> tuple[int, str, str]:
    """Run ``samepix`` with stderr on a pseudo-terminal (what a user's shell gives it)."""
    import pty
    import select
    import sys

    from .helpers import ROOT

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "samepix", *args],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=60), out, seen.decode(errors="replace")


def test_dupes_progress_on_a_terminal_only(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    for seed in range(1, 5):
        base = picture(seed, (480, 360))
        (folder / f"p{seed}.png").write_bytes(encode(base, "PNG"))
        (folder / f"p{seed}-q80.jpg").write_bytes(encode(base, "JPEG", quality=80))
        (folder / f"p{seed}-q60.jpg").write_bytes(encode(base, "JPEG", quality=60))
    status, out, err = run_with_tty_stderr("dupes", str(folder))
    assert status == 0 and "p1.png" in out, (out, err)
    for stage in ("decoding", "searching", "comparing candidate pairs",
                  "comparing copies with the best"):  # fmt: skip
        assert f"{stage} " in err, (stage, err)
    assert "comparing copies with the best 8/8 100%" in err, err
    piped = run("dupes", str(folder), "--no-update")
    assert piped.returncode == 0 and piped.stderr == ""


def test_find_progress_covers_its_comparisons_on_a_terminal_only(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    base = picture(1, (480, 360))
    (folder / "p1.png").write_bytes(encode(base, "PNG"))
    for quality in (90, 80, 70, 60):
        (folder / f"p1-q{quality}.jpg").write_bytes(encode(base, "JPEG", quality=quality))
    query = tmp_path / "query.webp"
    query.write_bytes(encode(base, "WEBP", quality=85))
    status, out, err = run_with_tty_stderr("find", str(query), "--in", str(folder))
    assert status == 0 and "p1.png" in out, (out, err)
    assert "comparing candidates 5/5 100%" in err, err
    piped = run("find", str(query), "--in", str(folder), "--no-update")
    assert piped.returncode == 0 and piped.stderr == ""


def test_eta_counts_only_what_it_watched_and_never_says_0s() -> None:
    import io

    from samepix.index import Progress
    from samepix.progress import ProgressLine

    clock = iter([100.0, 100.8, 101.6])
    stream = io.StringIO()
    line = ProgressLine(stream, interval=0.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("samepix.progress.time.monotonic", lambda: next(clock))
        line(Progress("decoding", 40, 100))  # first report at 40 %: a chunk finished unseen
        line(Progress("decoding", 44, 100))  # 4 in 0.8 s: 5/s, 56 left: 12 s
        line(Progress("decoding", 99, 100))  # 59 in 1.6 s: 1 left: 0.03 s
    drawn = [part.strip() for part in stream.getvalue().split("\r") if part.strip()]
    assert drawn[1] == "decoding 44/100 44% 5.0/s eta 12s", drawn
    assert drawn[2].endswith("eta 1s"), drawn


# -- 9. names and choices a user sees ----------------------------------------------------------


def test_sync_names_the_best_local_copy(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    base = picture(3, (480, 360))
    # Named so that every ordering by name or by hash distance would pick the q30 copy first.
    (folder / "a_q30.jpg").write_bytes(encode(base, "JPEG", quality=30))
    (folder / "z_original.png").write_bytes(encode(base, "PNG"))
    routes = {"/p.jpg": Resource(encode(base, "JPEG", quality=85), "image/jpeg")}
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(server.url("/p.jpg") + "\n")
        proc = run("sync", str(urls), str(folder), "--json")
    item = json.loads(proc.stdout)["items"][0]
    assert item["decision"] == "skipped-same-picture", item
    assert item["path"].endswith("z_original.png") and "as z_original.png" in item["reason"]


def test_replace_better_renames_to_the_true_extension(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    base = picture(4, (480, 360))
    (folder / "x_q30.jpg").write_bytes(encode(base, "JPEG", quality=30))
    routes = {"/x.png": Resource(encode(base, "PNG"), "image/png")}
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(server.url("/x.png") + "\n")
        proc = run("sync", str(urls), str(folder), "--replace-better", "-v")
    assert proc.returncode == 0, proc.stderr
    assert not (folder / "x_q30.jpg").exists()
    assert (folder / "x_q30.png").read_bytes().startswith(b"\x89PNG")  # PNG bytes, .png name
    assert (folder / ".samepix" / "replaced" / "x_q30.jpg").read_bytes().startswith(b"\xff\xd8")
    found = run("find", str(folder / "x_q30.png"), "--in", str(folder), "--json")
    paths = [m["path"] for m in json.loads(found.stdout)["matches"]]
    assert paths == [str(folder / "x_q30.png")]  # the index follows: no stale .jpg entry


def test_sync_ctrl_c_says_what_was_done_and_what_is_left(tmp_path: Path) -> None:
    import signal
    import sys
    import time

    from .helpers import ROOT, Response

    folder = tmp_path / "lib"
    folder.mkdir()

    def slow(handler: object) -> Response:
        time.sleep(20)
        return Response(200, encode(picture(9), "PNG"), {"Content-Type": "image/png"})

    routes = {"/fast.png": Resource(encode(picture(8), "PNG"), "image/png"), "/slow1.png": slow,
              "/slow2.png": slow}  # fmt: skip
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(server.url(p) for p in ("/fast.png", "/slow1.png", "/slow2.png")))
        log = tmp_path / "log.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        # Ctrl-C as a terminal sends it. A child started from a background job inherits SIGINT
        # ignored (as POSIX shells start `cmd &`) and Python then keeps it ignored, so the
        # child puts Python's own handler back first, whatever ran this test.
        launcher = (
            "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "sys.argv[0] = 'samepix'; runpy.run_module('samepix', run_name='__main__')"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", launcher, "sync", str(urls), str(folder), "--log", str(log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().count("\n") >= 1):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert err.startswith("error: interrupted after 1 of 3 URLs (downloaded 1,"), err
    assert "2 left undecided" in err and "run the same command again" in err
    assert "downloaded 1" in out  # the summary of what was done
    assert (folder / "fast.png").exists()


def test_dupes_json_totals(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    for seed in (1, 2):
        base = picture(seed)
        (folder / f"p{seed}.png").write_bytes(encode(base, "PNG"))
        (folder / f"p{seed}.jpg").write_bytes(encode(base, "JPEG", quality=70))
    (folder / "p1-copy.png").write_bytes((folder / "p1.png").read_bytes())
    data = json.loads(run("dupes", str(folder), "--json").stdout)
    extra = [folder / "p1-copy.png", folder / "p1.jpg", folder / "p2.jpg"]
    assert data["totals"] == {
        "groups": 2,
        "files": 5,
        "extra_copies": 3,
        "bytes_freed": sum(p.stat().st_size for p in extra),
    }


def test_top_level_help_gives_each_commands_exit_status() -> None:
    text = run("--help").stdout
    for line in ("compare  0 identical or same, 1 similar or different",
                 "find     0 found", "dupes    0 duplicates found, 1 none",
                 "sync     0 every URL handled", "130 interrupted"):  # fmt: skip
        assert line in text, line


# -- 10. small inconsistencies -----------------------------------------------------------------


def test_alpha_only_edit_shows_in_psnr(tmp_path: Path) -> None:
    base = picture(1)
    rgba = np.dstack([base, np.full(base.shape[:2], 255, np.uint8)])
    edited = rgba.copy()
    edited[50:150, 50:200, 3] = 0  # only the alpha channel changes
    (tmp_path / "a.png").write_bytes(encode(rgba, "PNG"))
    (tmp_path / "b.png").write_bytes(encode(edited, "PNG"))
    data = json.loads(run("compare", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                          "--json").stdout)  # fmt: skip
    assert data["verdict"] != "same"
    assert data["metrics"]["psnr"] != "inf" and data["metrics"]["psnr"] < 18


def test_a_different_photo_is_not_called_an_edit() -> None:
    from .conftest import shared_file

    a, b = shared_file("kodak", "kodim01.png"), shared_file("kodak", "kodim02.png")
    proc = run("compare", str(a), str(b))
    assert proc.stdout.startswith("different: ")
    for words in ("a local change", "an edit", "recoloured"):
        assert words not in proc.stdout, proc.stdout


# -- 3. mirror images, rotations and crops in folder searches ------------------------------------


@pytest.fixture
def kodak_folder(tmp_path: Path) -> tuple[Path, np.ndarray]:
    from PIL import Image

    from .conftest import shared_file

    folder = tmp_path / "lib"
    folder.mkdir()
    k5 = np.asarray(Image.open(shared_file("kodak", "kodim05.png")).convert("RGB"))
    (folder / "k5.jpg").write_bytes(encode(k5, "JPEG", quality=90))
    for name in ("kodim07.png", "kodim19.png"):
        other = Image.open(shared_file("kodak", name)).convert("RGB")
        (folder / name.replace(".png", ".jpg")).write_bytes(encode(other, "JPEG", quality=90))
    return folder, k5


TURNS = {
    "mirror-lr": (np.fliplr, "--flip-is-same"),
    "mirror-tb": (np.flipud, "--flip-is-same"),
    "rotate-90": (np.rot90, "--rotation-is-same"),
    "rotate-180": (lambda a: np.rot90(a, 2), "--rotation-is-same"),
}


@pytest.mark.parametrize("turn", list(TURNS))
def test_find_mirrored_and_rotated_copies(kodak_folder: Any, tmp_path: Path, turn: str) -> None:
    folder, k5 = kodak_folder
    how, flag = TURNS[turn]
    query = tmp_path / "query.jpg"
    query.write_bytes(encode(np.ascontiguousarray(how(k5)), "JPEG", quality=85))
    plain = json.loads(run("find", str(query), "--in", str(folder), "--json").stdout)
    assert not plain["found"]  # by default a mirror or a rotation is similar, not the same...
    assert [m["path"] for m in plain["similar"]] == [str(folder / "k5.jpg")]  # ...but found
    proc = run("find", str(query), "--in", str(folder), flag)
    assert proc.returncode == 0 and proc.stdout.startswith(f"same: {folder / 'k5.jpg'}")


def test_dupes_groups_mirrored_and_rotated_copies_with_the_flags(kodak_folder: Any) -> None:
    folder, k5 = kodak_folder
    (folder / "k5-mirror.png").write_bytes(encode(np.ascontiguousarray(np.fliplr(k5)), "PNG"))
    (folder / "k5-turned.jpg").write_bytes(
        encode(np.ascontiguousarray(np.rot90(k5, 3)), "JPEG", quality=80)
    )
    assert run("dupes", str(folder)).returncode == 1  # off by default: no group

    def groups(*flags: str) -> list[list[str]]:
        data = json.loads(run("dupes", str(folder), "--json", *flags).stdout)
        return [sorted(Path(c["path"]).name for c in g["copies"]) for g in data["groups"]]

    # A rotation and a mirror image of one picture are mirror images of each other.
    assert groups("--flip-is-same") == [["k5-mirror.png", "k5-turned.jpg", "k5.jpg"]]
    assert groups("--rotation-is-same") == [["k5-turned.jpg", "k5.jpg"]]


def test_sync_reports_a_mirror_like_a_greyscale_copy(kodak_folder: Any, tmp_path: Path) -> None:
    folder, k5 = kodak_folder
    routes = {
        "/mirror.jpg": Resource(encode(np.ascontiguousarray(np.fliplr(k5)), "JPEG"), "image/jpeg"),
        "/grey.png": Resource(encode(k5.mean(axis=2).astype(np.uint8), "PNG"), "image/png"),
    }
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{server.url('/mirror.jpg')}\n{server.url('/grey.png')}\n")
        items = json.loads(run("sync", str(urls), str(folder), "--dry-run", "--json").stdout)[
            "items"
        ]
        for item in items:
            assert "similar, not the same, to k5.jpg" in item["reason"], item
        flagged = run("sync", str(urls), str(folder), "--dry-run", "--json", "--flip-is-same")
        mirror = json.loads(flagged.stdout)["items"][0]
        assert mirror["decision"] == "skipped-same-picture" and "k5.jpg" in mirror["reason"]


# -- extras: --csv, probe on a file, sync --no-cache, settings, completion -----------------------


def test_csv_for_find_dupes_and_sync(tmp_path: Path) -> None:
    import csv
    import io

    folder = tmp_path / "lib"
    folder.mkdir()
    base = picture(1)
    (folder / "p.png").write_bytes(encode(base, "PNG"))
    (folder / "p.jpg").write_bytes(encode(base, "JPEG", quality=80))
    (folder / "other.png").write_bytes(encode(picture(2), "PNG"))
    rows = list(csv.DictReader(io.StringIO(run("dupes", str(folder), "--csv").stdout)))
    assert [(r["group"], r["role"], Path(r["path"]).name) for r in rows] == [
        ("1", "best", "p.png"),
        ("1", "copy", "p.jpg"),
    ]
    assert rows[1]["verdict"] == "same" and rows[1]["bytes"] == str(
        (folder / "p.jpg").stat().st_size
    )
    found = run("find", str(folder / "p.jpg"), "--in", str(folder), "--csv")
    rows = list(csv.DictReader(io.StringIO(found.stdout)))
    assert {(Path(r["path"]).name, r["kind"], r["verdict"]) for r in rows} == {
        ("p.jpg", "match", "identical"),
        ("p.png", "match", "same"),
    }
    routes = {"/n.png": Resource(encode(picture(3), "PNG"), "image/png")}
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{server.url('/n.png')}\nnot a url\n")
        proc = run("sync", str(urls), str(folder), "--csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["line"], r["decision"]) for r in rows] == [("1", "downloaded"), ("2", "failed")]
    assert run("find", "x", "--in", str(folder), "--csv", "--json").returncode == 2


def test_probe_a_local_file(tmp_path: Path) -> None:
    from .conftest import shared_file

    photo = shared_file("kodak", "kodim01.png")
    data = json.loads(run("probe", str(photo), "--json").stdout)
    assert (data["format"], data["width"], data["height"]) == ("PNG", 768, 512)
    assert data["size"] == photo.stat().st_size and data["transferred"] < data["size"]
    assert run("probe", photo.as_uri()).stdout.startswith("PNG 768×512, ")
    (tmp_path / "notes.txt").write_text("hello")
    one_line_error(run("probe", str(tmp_path / "notes.txt")), "notes.txt", "not an image")
    one_line_error(run("probe", str(tmp_path / "missing.jpg")), "missing.jpg", "no such file")


def test_sync_no_cache_downloads_again(library_and_server: Any) -> None:
    folder, urls, server = library_and_server
    assert run("sync", str(urls), str(folder)).returncode == 0
    sent = server.body_bytes_sent
    again = json.loads(run("sync", str(urls), str(folder), "--json").stdout)
    assert again["skipped_unchanged"] == 2 and server.body_bytes_sent == sent  # 304s
    fresh = json.loads(run("sync", str(urls), str(folder), "--json", "--no-cache").stdout)
    assert server.body_bytes_sent > sent  # downloaded again: no validators were sent
    assert "if-none-match" not in server.headers_of("/new.jpg")[-1]
    assert [i["reason"].startswith("same bytes as at the last sync") for i in fresh["items"]] == [
        True,
        True,
    ]


def test_defaults_from_environment_and_config_file(tmp_path: Path) -> None:
    config = tmp_path / "samepix.ini"
    config.write_text("[defaults]\nmin-ssim = 0.9999\n[compare]\nflip_is_same = yes\n")
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    a.write_bytes(encode(picture(1), "PNG"))
    b.write_bytes(encode(picture(1), "JPEG", quality=70))
    mirrored = tmp_path / "m.png"
    mirrored.write_bytes(encode(np.ascontiguousarray(np.fliplr(picture(1))), "PNG"))
    assert run("compare", str(a), str(b)).returncode == 0
    env = {"SAMEPIX_CONFIG": str(config)}
    assert run("compare", str(a), str(b), env=env).returncode == 1  # the file's min-ssim
    assert run("compare", str(a), str(b), "--min-ssim", "0.5", env=env).returncode == 0  # flag
    env_wins = {**env, "SAMEPIX_MIN_SSIM": "0.5"}
    assert run("compare", str(a), str(b), env=env_wins).returncode == 0  # env over the file
    assert run("compare", str(a), str(mirrored), "--min-ssim", "0.5", env=env).returncode == 0
    bad = run("compare", str(a), str(b), env={"SAMEPIX_MIN_SSIM": "high"})
    one_line_error(bad, "SAMEPIX_MIN_SSIM", "'high'")
    config.write_text("[defaults]\nfolder = /tmp\n")
    one_line_error(run("compare", str(a), str(b), env=env), "samepix.ini", "folder")


def test_shell_completion_hook(tmp_path: Path) -> None:
    pytest.importorskip("argcomplete")
    out = tmp_path / "completions"
    env = {
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": "samepix syn",
        "COMP_POINT": "11",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    run(env=env)
    assert out.read_text().split() == ["sync"]
