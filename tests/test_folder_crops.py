"""Crops, mirror images and rotations in folder searches, as a user runs them (``samepix``
subprocesses on real folders of Kodak pictures; a local server for ``sync``)."""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import Resource, encode, http_server, run_cli

run = functools.partial(run_cli, text=True)


@pytest.fixture
def k5() -> np.ndarray:
    from .conftest import shared_file

    return np.asarray(Image.open(shared_file("kodak", "kodim05.png")).convert("RGB"))


def library(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A folder holding ``files`` and two other Kodak pictures."""
    from .conftest import shared_file

    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("kodim07.png", "kodim19.png"):
        other = Image.open(shared_file("kodak", name)).convert("RGB")
        (folder / name.replace(".png", ".jpg")).write_bytes(encode(other, "JPEG", quality=90))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def crop(pixels: np.ndarray, sx: float, sy: float, ax: float, ay: float) -> np.ndarray:
    h, w = pixels.shape[:2]
    cw, ch = round(w * sx), round(h * sy)
    x, y = round((w - cw) * ax), round((h - ch) * ay)
    return np.ascontiguousarray(pixels[y : y + ch, x : x + cw])


def find(query: Path, folder: Path, *flags: str) -> dict[str, list[str]]:
    proc = run("find", str(query), "--in", str(folder), "--json", *flags)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    return {k: sorted(Path(m["path"]).name for m in data[k]) for k in ("matches", "similar")}


# Crops keeping 62 % and 72 % of the area, off-centre and of another shape (each side at
# least 70 %, what the crop hashes promise): the plain hashes are far from the original's, only
# the index's crop hashes find them.
QUERY_CROPS = {
    "78x80-off-centre": (0.78, 0.8, 0.3, 0.7),
    "100x72-near-the-top": (1.0, 0.72, 0.5, 0.1),
}


@pytest.mark.parametrize("box", list(QUERY_CROPS))
def test_find_a_query_that_is_a_crop_of_a_folder_file(
    k5: np.ndarray, tmp_path: Path, box: str
) -> None:
    folder = library(tmp_path, {"k5.jpg": encode(k5, "JPEG", quality=90)})
    query = tmp_path / "query.jpg"
    query.write_bytes(encode(crop(k5, *QUERY_CROPS[box]), "JPEG", quality=85))
    assert find(query, folder) == {"matches": [], "similar": []}  # no crop hashes looked up
    assert find(query, folder, "--crop-is-same") == {"matches": ["k5.jpg"], "similar": []}
    proc = run("find", str(query), "--in", str(folder), "--crop-is-same")
    assert proc.returncode == 0 and proc.stdout.startswith(f"same: {folder / 'k5.jpg'}")
    assert "crop of" in proc.stdout


def test_find_reports_every_copy_with_the_options(k5: np.ndarray, tmp_path: Path) -> None:
    folder = library(
        tmp_path,
        {
            "k5.jpg": encode(k5, "JPEG", quality=90),
            "k5-mirror.png": encode(np.ascontiguousarray(np.fliplr(k5)), "PNG"),
            "k5-turned.jpg": encode(np.ascontiguousarray(np.rot90(k5)), "JPEG", quality=90),
            "k5-crop.jpg": encode(crop(k5, 0.8, 0.85, 0.0, 1.0), "JPEG", quality=90),
        },
    )
    query = tmp_path / "query.jpg"
    query.write_bytes(encode(k5, "JPEG", quality=80))
    # As it stands, the copy matches; the others are not looked for.
    assert find(query, folder) == {"matches": ["k5.jpg"], "similar": []}
    # The copy as it stands is listed first, then the ones through a relation.
    proc = run("find", str(query), "--in", str(folder), "--json", "--flip-is-same")
    assert [Path(m["path"]).name for m in json.loads(proc.stdout)["matches"]] == [
        "k5.jpg",
        "k5-mirror.png",
    ]
    assert find(query, folder, "--flip-is-same") == {
        "matches": ["k5-mirror.png", "k5.jpg"],
        "similar": [],
    }
    assert find(query, folder, "--flip-is-same", "--rotation-is-same", "--crop-is-same") == {
        "matches": ["k5-crop.jpg", "k5-mirror.png", "k5-turned.jpg", "k5.jpg"],
        "similar": [],
    }
    # --first stops at the first match, as it stands.
    proc = run("find", str(query), "--in", str(folder), "--json", "--first", "--crop-is-same")
    assert [Path(m["path"]).name for m in json.loads(proc.stdout)["matches"]] == ["k5.jpg"]


def test_sync_decides_on_the_copy_as_it_stands(k5: np.ndarray, tmp_path: Path) -> None:
    folder = library(
        tmp_path,
        {
            "k5.jpg": encode(k5, "JPEG", quality=90),
            "k5-mirror.png": encode(np.ascontiguousarray(np.fliplr(k5)), "PNG"),
        },
    )
    routes = {
        "/k5.jpg": Resource(encode(k5, "JPEG", quality=80), "image/jpeg"),
        "/crop.jpg": Resource(encode(crop(k5, 0.75, 0.8, 1.0, 0.2), "JPEG"), "image/jpeg"),
    }
    with http_server(routes) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{server.url('/k5.jpg')}\n{server.url('/crop.jpg')}\n")
        proc = run("sync", str(urls), str(folder), "--dry-run", "--json", "--flip-is-same",
                   "--crop-is-same")  # fmt: skip
        copy, cropped = json.loads(proc.stdout)["items"]
        assert copy["decision"] == "skipped-same-picture"
        assert copy["reason"].startswith("same picture as k5.jpg")  # named: the copy as it stands
        assert cropped["decision"] == "skipped-same-picture" and "k5" in cropped["reason"]
        plain = json.loads(run("sync", str(urls), str(folder), "--dry-run", "--json").stdout)
        assert plain["items"][1]["decision"] == "downloaded"  # dry run: would be; not the same


def test_dupes_groups_crops_with_the_option(k5: np.ndarray, tmp_path: Path) -> None:
    folder = library(
        tmp_path,
        {
            "k5.png": encode(k5, "PNG"),
            "k5-crop.jpg": encode(crop(k5, 0.85, 0.7, 0.5, 0.0), "JPEG", quality=85),
            "k5-small-crop.jpg": encode(crop(k5, 0.6, 0.6, 0.5, 0.5), "JPEG", quality=85),
        },
    )
    assert run("dupes", str(folder)).returncode == 1  # off by default: no group

    data = json.loads(run("dupes", str(folder), "--json", "--crop-is-same").stdout)
    groups = [[Path(c["path"]).name for c in g["copies"]] for g in data["groups"]]
    # The best copy (the whole picture) first; a crop keeping 36 % is less than
    # min_crop_area (half the picture): not the same.
    assert groups == [["k5.png", "k5-crop.jpg"]]
    assert "crop of" in " ".join(data["groups"][0]["copies"][1]["reasons"])


def test_an_older_index_gets_crop_hashes_at_the_next_update(k5: np.ndarray, tmp_path: Path) -> None:
    folder = library(tmp_path, {"k5.jpg": encode(k5, "JPEG", quality=90)})
    assert run("index", str(folder)).returncode == 0
    conn = sqlite3.connect(folder / ".samepix" / "index.db")
    conn.executescript(  # what an index made before crop hashes looks like
        "DROP TRIGGER files_delete_crops; DROP TRIGGER crop_hashes_insert; "
        "DROP TABLE crop_hashes; DELETE FROM meta WHERE key = 'crop_grid';"
    )
    conn.close()
    query = tmp_path / "query.jpg"
    query.write_bytes(encode(crop(k5, 0.75, 0.75, 0.0, 0.0), "JPEG", quality=85))
    assert find(query, folder, "--crop-is-same", "--no-update")["matches"] == []
    assert find(query, folder)["matches"] == []  # an update without a crop search: not filled
    assert find(query, folder, "--crop-is-same", "--no-update")["matches"] == []
    assert find(query, folder, "--crop-is-same")["matches"] == ["k5.jpg"]


def test_dupes_lists_only_copies_that_are_the_same_as_the_best(
    k5: np.ndarray, tmp_path: Path
) -> None:
    # The lossless mirror image is the best copy; the crop is a crop of k5.jpg, not of the
    # mirror image (no one relation explains that pair): it is left out of the group rather
    # than listed as a "different" copy that --move-to or --trash would act on.
    folder = library(
        tmp_path,
        {
            "k5.jpg": encode(k5, "JPEG", quality=90),
            "k5-mirror.png": encode(np.ascontiguousarray(np.fliplr(k5)), "PNG"),
            "k5-crop.jpg": encode(crop(k5, 0.8, 0.8, 0.5, 1.0), "JPEG", quality=90),
        },
    )
    data = json.loads(
        run("dupes", str(folder), "--json", "--flip-is-same", "--crop-is-same").stdout
    )
    [group] = data["groups"]
    assert [Path(c["path"]).name for c in group["copies"]] == ["k5-mirror.png", "k5.jpg"]
    assert group["copies"][1]["verdict"] == "same"
