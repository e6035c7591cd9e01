"""The real ``samepix`` command in a subprocess: verdicts, exit codes, JSON, heatmaps, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import ROOT, Response, encode, http_server, run_cli
from .helpers import one_line_error as assert_one_line_error

run = run_cli


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from samepix.demo import make_picture

    folder = tmp_path_factory.mktemp("pictures")
    one, two = make_picture(11, (320, 240)), make_picture(12, (320, 240))
    files = {
        "one.png": encode(one, "PNG"),
        "one.jpg": encode(one, "JPEG", quality=70),
        "two.png": encode(two, "PNG"),
        "empty.png": b"",
        "page.jpg": b"<!DOCTYPE html><html><title>Not found</title></html>",
        "cut.jpg": encode(one, "JPEG", quality=90)[:3000],
        "tiny.png": encode(one[:6, :6], "PNG"),
        "tiny2.png": encode(one[:6, :6], "BMP"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def test_same_picture_exit_0(pictures: dict[str, Path]) -> None:
    proc = run("compare", str(pictures["one.png"]), str(pictures["one.jpg"]))
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert out.startswith("same: ")
    assert "PNG vs JPEG q≈70" in out and "SSIM" in out


def test_different_picture_exit_1(pictures: dict[str, Path]) -> None:
    proc = run("compare", str(pictures["one.png"]), str(pictures["two.png"]))
    assert proc.returncode == 1
    assert proc.stdout.decode().startswith("different: ")


def test_json_schema(pictures: dict[str, Path]) -> None:
    proc = run("compare", "--json", str(pictures["one.png"]), str(pictures["one.jpg"]))
    data = json.loads(proc.stdout)
    assert data["verdict"] == "same" and isinstance(data["reasons"], list)
    for key in ("ssim", "ssim_min_channel", "ms_ssim", "nrmse", "psnr", "worst_region_ssim"):
        assert key in data["metrics"]
    assert set(data["metrics"]["hash_distances"]) == {"ahash", "dhash", "phash", "whash"}
    for side in ("a", "b"):
        assert {"source", "format", "width", "height", "mode", "bytes"} <= set(data[side])
    assert data["a"]["format"] == "PNG" and data["b"]["format"] == "JPEG"


def test_identical_json_has_infinite_psnr_as_text(pictures: dict[str, Path]) -> None:
    proc = run("compare", "--json", str(pictures["one.png"]), str(pictures["one.png"]))
    data = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert data["verdict"] == "identical" and data["metrics"]["psnr"] == "inf"


def test_diff_heatmap(pictures: dict[str, Path], tmp_path: Path) -> None:
    edited = np.asarray(Image.open(pictures["one.png"])).copy()
    edited[60:140, 100:200] = (255, 255, 0)
    (tmp_path / "edited.png").write_bytes(encode(edited, "PNG"))
    out = tmp_path / "heat.png"
    proc = run(
        "compare", str(pictures["one.png"]), str(tmp_path / "edited.png"), "--diff", str(out)
    )
    assert proc.returncode == 1
    heat = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert heat.shape[0] > 240 and heat.shape[1] >= 320  # the picture, a legend below it
    heat = heat[:240, :320]
    # Red where the edit is (its edges: the flat fill's inside keeps no structure to lose),
    # not elsewhere.
    red = (heat[:, :, 0] > 180) & (heat[:, :, 1] < 90) & (heat[:, :, 2] < 90)
    assert red[55:145, 95:205].mean() > 0.05
    assert not red[180:230, 10:80].any() and not red[:, 240:].any()


def test_policy_flags_change_the_verdict(pictures: dict[str, Path]) -> None:
    args = ("compare", str(pictures["one.png"]), str(pictures["one.jpg"]))
    assert run(*args).returncode == 0
    assert run(*args, "--min-ssim", "0.9999").returncode == 1
    assert run(*args, "--policy", "min_ssim=0.9999").returncode == 1
    bad = run(*args, "--policy", "nonsense=1")
    assert_one_line_error(bad, "--policy")
    assert_one_line_error(run(*args, "--min-ssim", "7"), "min_ssim")


def test_mirror_image_is_a_policy_switch(pictures: dict[str, Path], tmp_path: Path) -> None:
    mirrored = np.ascontiguousarray(np.asarray(Image.open(pictures["one.png"]))[:, ::-1])
    (tmp_path / "mirror.png").write_bytes(encode(mirrored, "PNG"))
    args = ("compare", str(pictures["one.png"]), str(tmp_path / "mirror.png"))
    assert run(*args).returncode == 1
    lenient = run(*args, "--flip-is-same")
    assert lenient.returncode == 0, lenient.stdout.decode()


def test_stdin_source(pictures: dict[str, Path]) -> None:
    proc = run("compare", "-", str(pictures["one.png"]), stdin=pictures["one.jpg"].read_bytes())
    assert proc.returncode == 0 and "<stdin>" in proc.stdout.decode()


def test_tiny_images_do_not_crash(pictures: dict[str, Path]) -> None:
    proc = run("compare", str(pictures["tiny.png"]), str(pictures["tiny2.png"]))
    assert proc.returncode == 0 and proc.stdout.decode().startswith("identical")


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("missing.png", "no such file"),
        ("empty.png", "empty"),
        ("page.jpg", "HTML page"),
        ("cut.jpg", "truncated"),
    ],
    ids=["missing", "zero-bytes", "html", "truncated-jpeg"],
)
def test_bad_files(pictures: dict[str, Path], name: str, needle: str) -> None:
    path = pictures["one.png"].parent / name
    assert_one_line_error(run("compare", str(path), str(pictures["one.png"])), name, needle)


def test_directory_is_an_error(pictures: dict[str, Path]) -> None:
    folder = str(pictures["one.png"].parent)
    assert_one_line_error(run("compare", folder, str(pictures["one.png"])), "is a directory")


def test_truncated_png(pictures: dict[str, Path], tmp_path: Path) -> None:
    data = pictures["one.png"].read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    assert_one_line_error(run("compare", str(cut), str(pictures["one.png"])), "cut.png")


def test_decompression_bomb(pictures: dict[str, Path], tmp_path: Path) -> None:
    from .test_decode import _png_header_only

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))
    line = assert_one_line_error(run("compare", str(bomb), str(pictures["one.png"])), "bomb.png")
    assert "exceeds the limit" in line
    low = run("compare", "--max-pixels", "1000", str(pictures["one.png"]), str(pictures["two.png"]))
    assert_one_line_error(low, "one.png", "limit of 1,000")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root to drop privileges with setpriv",
)
def test_permission_denied_as_unprivileged_user(pictures: dict[str, Path], tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(pictures["one.png"].read_bytes())
    secret.chmod(0o000)
    os.chmod(tmp_path, 0o755)
    probe = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", "1"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("cannot run the interpreter as an unprivileged user here")
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
         "samepix", "compare", str(secret), str(secret)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=60,
        check=False,
    )  # fmt: skip
    if b"No module named" in proc.stderr:
        pytest.skip("the unprivileged user cannot read the environment")
    assert_one_line_error(proc, "secret.png", "permission denied")


def test_http_sources_and_errors(pictures: dict[str, Path]) -> None:
    routes = {
        "/one.jpg": Response(200, pictures["one.jpg"].read_bytes(), {"Content-Type": "image/jpeg"}),
        "/page.jpg": Response(
            200, b"<html><body>oops</body></html>", {"Content-Type": "image/jpeg"}
        ),
        "/broken.jpg": Response(500, b"boom"),
    }
    with http_server(routes) as server:
        ok = run("compare", server.url("/one.jpg"), str(pictures["one.png"]))
        assert ok.returncode == 0, ok.stderr
        assert "downloaded" in ok.stdout.decode()
        missing = run("compare", server.url("/nothing.jpg"), str(pictures["one.png"]))
        assert_one_line_error(missing, server.url("/nothing.jpg"), "HTTP 404")
        failing = run("compare", server.url("/broken.jpg"), str(pictures["one.png"]))
        assert_one_line_error(failing, "HTTP 500")
        html = run("compare", server.url("/page.jpg"), str(pictures["one.png"]))
        assert_one_line_error(html, "/page.jpg", "HTML page")


def test_url_that_never_answers(pictures: dict[str, Path]) -> None:
    def stall(handler: object) -> None:
        time.sleep(5)

    with http_server({"/slow.jpg": stall}) as server:
        proc = run("compare", "--timeout", "0.5", server.url("/slow.jpg"), str(pictures["one.png"]))
    assert_one_line_error(proc, "/slow.jpg", "timed out")


def test_debug_shows_the_traceback(pictures: dict[str, Path]) -> None:
    proc = run("compare", "--debug", str(pictures["empty.png"]), str(pictures["one.png"]))
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr.decode() and "DecodeError" in proc.stderr.decode()


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, samepix.cli\n"
        "try:\n    samepix.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'cv2', 'PIL', 'httpx') if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    )
    assert proc.stdout.decode().strip().splitlines()[-1] == "heavy:"


def test_compare_of_local_files_imports_no_http_client(pictures: dict[str, Path]) -> None:
    # httpx and asyncio are a third of a one-shot compare's start-up, numpy.ma (np.median's
    # NaN check) a tenth; two local files need none of them.
    code = (
        "import sys, samepix.cli\n"
        f"code = samepix.cli.main(['compare', {str(pictures['one.png'])!r}, "
        f"{str(pictures['one.jpg'])!r}, '--json'])\n"
        "unused = ('httpx', 'asyncio', 'samepix.fetch', 'numpy.ma')\n"
        "loaded = [m for m in unused if m in sys.modules]\n"
        "print('loaded:' + ','.join(loaded), code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    )
    assert proc.stdout.decode().strip().splitlines()[-1] == "loaded: 0"


@pytest.mark.parametrize(
    ("given", "expected"), [(None, "1"), ("3", "3")], ids=["default-one", "user-value-kept"]
)
def test_cli_keeps_numpys_blas_to_one_thread_unless_told(
    pictures: dict[str, Path], given: str | None, expected: str
) -> None:
    # OpenBLAS starts its threads when numpy is imported (most of a one-shot compare's numpy
    # import on 2 cores), so the variable must be set before: the CLI imports numpy lazily.
    code = (
        "import os, sys, samepix.cli\n"
        "assert 'numpy' not in sys.modules\n"
        f"samepix.cli.main(['compare', {str(pictures['one.png'])!r}, "
        f"{str(pictures['one.jpg'])!r}, '--json'])\n"
        "print('blas threads:', os.environ.get('OPENBLAS_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**env, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    )
    assert proc.stdout.decode().strip().splitlines()[-1] == f"blas threads: {expected}"


def test_version_and_usage() -> None:
    assert run("--version").stdout.decode().startswith("samepix ")
    assert run().returncode == 2
