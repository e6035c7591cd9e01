"""Library.find and Library.duplicates on real folders, real image files and a real local server."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import samepix
from samepix import Library
from samepix.errors import DecodeError, IndexCorrupt
from samepix.index import default_db_path
from samepix.library import DuplicateGroup, FindResult, quality_key

from .helpers import Response, encode, http_server


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


def resized(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "2024").mkdir(parents=True)
    for seed in range(1, 7):
        (root / f"photo{seed}.jpg").write_bytes(encode(picture(seed), "JPEG", quality=90))
    (root / "2024" / "photo7.png").write_bytes(encode(picture(7), "PNG"))
    return root


def lib(root: Path) -> Library:
    return Library(root, workers=1)


# ---------------------------------------------------------------------------------------------
# find


def test_finds_a_reencoded_resized_copy(folder: Path, tmp_path: Path) -> None:
    query = tmp_path / "download.webp"
    query.write_bytes(encode(resized(picture(3), (160, 120)), "WEBP", quality=75))
    with lib(folder) as library:
        result = library.find(query)
    assert result.found
    assert [m.path for m in result.matches] == [folder / "photo3.jpg"]
    match = result.matches[0]
    assert match.comparison.verdict.value == "same"
    assert any("resized" in r for r in match.comparison.reasons)
    assert result.compared == 1 and result.index_size == 7


def test_identical_bytes_need_no_decode(folder: Path) -> None:
    with lib(folder) as library:
        result = library.find(folder / "2024" / "photo7.png")
    assert result.best is not None
    assert result.best.comparison.verdict.value == "identical"
    assert result.best.comparison.rung == "bytes" and result.best.hash_distance == 0


def test_a_different_picture_is_not_found(folder: Path, tmp_path: Path) -> None:
    query = tmp_path / "other.jpg"
    query.write_bytes(encode(picture(99), "JPEG"))
    with lib(folder) as library:
        result = library.find(query)
    assert not result.found and result.matches == () and result.best is None


def test_found_via_a_url(folder: Path) -> None:
    body = encode(picture(5), "JPEG", quality=60)
    with http_server({"/img/5.jpg": Response(200, body, {"Content-Type": "image/jpeg"})}) as srv:
        with lib(folder) as library:
            result = library.find(srv.url("/img/5.jpg"))
        assert srv.hits["/img/5.jpg"] == 1
    assert result.found and result.matches[0].path == folder / "photo5.jpg"
    assert result.source.endswith("/img/5.jpg")


def test_find_accepts_pixels(folder: Path) -> None:
    with lib(folder) as library:
        result = library.find(picture(2))
    assert result.found and result.matches[0].path == folder / "photo2.jpg"


def test_all_copies_are_listed_identical_first(folder: Path) -> None:
    (folder / "copy-of-4.jpg").write_bytes((folder / "photo4.jpg").read_bytes())
    (folder / "4-small.png").write_bytes(encode(resized(picture(4), (160, 120)), "PNG"))
    with lib(folder) as library:
        every = library.find(folder / "photo4.jpg")
        one = library.find(folder / "photo4.jpg", first=True)
    verdicts = [(m.path.name, m.comparison.verdict.value) for m in every.matches]
    assert verdicts[:2] == [("copy-of-4.jpg", "identical"), ("photo4.jpg", "identical")]
    assert verdicts[2] == ("4-small.png", "same")
    assert len(one.matches) == 1


def test_update_once_then_no_update(folder: Path) -> None:
    with lib(folder) as library:
        assert not library.find(picture(8)).found
        (folder / "photo8.jpg").write_bytes(encode(picture(8), "JPEG"))
        # The index was brought up to date once for this Library; no rescan on every query.
        assert not library.find(picture(8)).found
        library.update()
        assert library.find(picture(8)).found
    with lib(folder) as library:  # a new Library rescans first, unless told not to
        (folder / "photo9.jpg").write_bytes(encode(picture(9), "JPEG"))
        assert not library.find(picture(9), update=False).found
        assert library.find(picture(9)).found


def test_other_aspect_ratio_is_screened_out_without_decoding(folder: Path) -> None:
    squashed = encode(resized(picture(6), (320, 200)), "PNG")  # 4:3 -> 8:5, same content
    with lib(folder) as library:
        result = library.find(squashed)
    assert not result.found
    assert result.candidates >= 1 and result.screened_out >= 1
    # Screened out of the search for copies; then, nothing having matched, the crop stage
    # (issue 11) compares it once, and reports it as similar, never as the same picture.
    assert result.compared == 1 and len(result.similar) == 1


def test_thumbnail_screen_never_drops_a_same_match(tmp_path: Path) -> None:
    # One drawing on flat backgrounds 0..252: pHash cannot tell them apart, so all are
    # candidates. The screen may only skip files the full comparison would not call `same`.
    import cv2

    from samepix.policy import DEFAULT_POLICY

    def drawing(shade: int) -> np.ndarray:
        img = np.full((240, 320, 3), shade, np.uint8)
        cv2.circle(img, (100, 120), 60, (20, 60, 200), -1, cv2.LINE_AA)
        cv2.rectangle(img, (190, 50), (280, 190), (230, 200, 40), -1, cv2.LINE_AA)
        cv2.putText(img, "logo", (30, 220), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 0), 2)
        return img

    root = tmp_path / "shades"
    root.mkdir()
    for shade in range(0, 256, 12):
        (root / f"shade{shade:03d}.png").write_bytes(encode(drawing(shade), "PNG"))
    query = encode(drawing(130), "PNG")
    found = {}
    for label, policy in (
        ("screened", DEFAULT_POLICY),
        ("all", DEFAULT_POLICY.with_(candidate_thumb_distance=255.0)),
    ):
        with Library(root, workers=1, policy=policy) as library:
            result = library.find(query)
        found[label] = (sorted(m.path.name for m in result.matches), result.screened_out)
    assert found["screened"][0] == found["all"][0]
    assert len(found["all"][0]) >= 5  # the background moved by up to 34–38 levels: still `same`
    assert found["screened"][1] > 0 and found["all"][1] == 0  # and the screen did work


def test_vanished_candidate_is_skipped(folder: Path) -> None:
    with lib(folder) as library:
        library.update()
        (folder / "photo1.jpg").unlink()
        result = library.find(picture(1), update=False)
    assert not result.found


def test_query_errors_are_samepix_errors(folder: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.jpg"
    page.write_bytes(b"<html>not found</html>")
    with lib(folder) as library, pytest.raises(DecodeError, match="HTML"):
        library.find(page)


def test_results_are_frozen_and_serialisable(folder: Path) -> None:
    import json

    with lib(folder) as library:
        result = library.find(folder / "photo1.jpg")
    assert isinstance(result, FindResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.candidates = 0  # type: ignore[misc]
    data = json.loads(json.dumps(result.to_dict()))
    assert data["found"] is True and data["matches"][0]["verdict"] == "identical"


def test_public_names() -> None:
    for name in ("Library", "FindResult", "Match", "DuplicateGroup", "IndexSummary"):
        assert name in samepix.__all__ and getattr(samepix, name) is not None


def test_corrupted_index_then_rebuild(folder: Path) -> None:
    db = default_db_path(folder)
    db.parent.mkdir()
    db.write_bytes(b"garbage" * 1000)
    with lib(folder) as library, pytest.raises(IndexCorrupt, match="--rebuild"):
        library.find(folder / "photo1.jpg")
    with lib(folder) as library:
        summary = library.rebuild()
        assert summary.added == 7
        assert library.find(folder / "photo1.jpg").found


# ---------------------------------------------------------------------------------------------
# duplicates


@pytest.fixture
def dupes_folder(tmp_path: Path) -> Path:
    root = tmp_path / "dupes"
    (root / "sub").mkdir(parents=True)
    one, two = picture(21), picture(22)
    files = {
        "one-q60.jpg": encode(one, "JPEG", quality=60),
        "one-q95.jpg": encode(one, "JPEG", quality=95),
        "one.png": encode(one, "PNG"),
        "sub/one-copy.png": encode(one, "PNG"),  # the same bytes as one.png
        "one-half.jpg": encode(resized(one, (160, 120)), "JPEG", quality=95),
        "two.jpg": encode(two, "JPEG", quality=85),
        "sub/two.webp": encode(two, "WEBP", quality=80),
        "three.png": encode(picture(23), "PNG"),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    # A local edit: the same picture with one area painted over is similar, not a copy.
    edited = picture(23).copy()
    edited[40:200, 60:260] = (250, 20, 20)
    (root / "three-edited.png").write_bytes(encode(edited, "PNG"))
    return root


def test_duplicate_groups_best_copy_first(dupes_folder: Path) -> None:
    with lib(dupes_folder) as library:
        groups = library.duplicates()
    assert all(isinstance(g, DuplicateGroup) for g in groups)
    names = [[str(c.path.relative_to(dupes_folder)) for c in g.copies] for g in groups]
    assert names == [
        # largest first; lossless before lossy; then JPEG quality; the half-size copy last
        ["one.png", "sub/one-copy.png", "one-q95.jpg", "one-q60.jpg", "one-half.jpg"],
        ["two.jpg", "sub/two.webp"],
    ]
    first = groups[0]
    assert first.best.comparison is None
    verdicts = [c.comparison.verdict.value for c in first.others if c.comparison]
    assert verdicts == ["identical", "same", "same", "same"]
    assert first.copies[1].comparison is not None
    assert first.copies[1].comparison.rung == "bytes"


def test_each_pair_is_compared_once_best_copy_first(
    dupes_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from samepix.index import Progress

    module = importlib.import_module("samepix.compare")  # samepix.compare is the function
    calls: list[tuple[str, str]] = []
    real = module.compare

    def counted(a: Any, b: Any, **kw: Any) -> Any:
        calls.append((Path(a.name).name, Path(b.name).name))
        return real(a, b, **kw)

    monkeypatch.setattr(module, "compare", counted)
    reports: list[Progress] = []
    with Library(dupes_folder, workers=1, progress=reports.append) as library:
        groups = library.duplicates()
        rank = {Path(e.path).name: quality_key(e) for e in library.index.entries()}
    assert [len(g.copies) for g in groups] == [5, 2]
    # The comparison that joins a copy to its group is the one its report shows: never twice.
    assert len({frozenset(c) for c in calls}) == len(calls), calls
    assert all(rank[a] < rank[b] for a, b in calls), calls
    stages = {r.stage for r in reports}
    assert "comparing candidate pairs" in stages
    last = [r for r in reports if r.stage == "comparing candidate pairs"][-1]
    assert last.done == last.total > 0


def test_no_duplicates(folder: Path) -> None:
    with lib(folder) as library:
        assert library.duplicates() == []


def test_quality_key_orders_resolution_then_compression(dupes_folder: Path) -> None:
    with lib(dupes_folder) as library:
        library.update()
        entries = {e.path: e for e in library.index.entries()}
    ranked = sorted(["one-q60.jpg", "one-half.jpg", "one.png", "one-q95.jpg"],
                    key=lambda p: quality_key(entries[p]))  # fmt: skip
    assert ranked == ["one.png", "one-q95.jpg", "one-q60.jpg", "one-half.jpg"]


def test_duplicates_json(dupes_folder: Path) -> None:
    import json

    with lib(dupes_folder) as library:
        groups = library.duplicates()
    data = json.loads(json.dumps([g.to_dict() for g in groups]))
    assert data[0]["best"].endswith("one.png")
    assert data[0]["copies"][1]["verdict"] == "identical"


def test_png_bytes_helper_round_trip() -> None:
    # helpers.encode writes real files Pillow reads back (guards the fixtures above)
    data = encode(picture(1, (96, 64)), "PNG")
    assert Image.open(io.BytesIO(data)).size == (96, 64)


def add_synthetic_rows(db: Path, count: int, seed: int) -> None:
    """``count`` index rows for files that do not exist: random hashes and thumbnails (no pair
    of them passes the thumbnail screen), written with SQL as a huge folder's index would be."""
    import sqlite3

    rng = np.random.default_rng(seed)
    ph = rng.integers(-(2**63), 2**63 - 1, size=count, dtype=np.int64)
    dh = rng.integers(-(2**63), 2**63 - 1, size=count, dtype=np.int64)
    thumbs = rng.integers(0, 256, size=(count, 256), dtype=np.uint8)
    rows = (
        (f"synthetic/{k:07d}.jpg", 1000, 1, k, rng.bytes(32), "JPEG", 640, 480, "RGB", 0, 90,
         0, int(dh[k]), int(ph[k]), 0, thumbs[k].tobytes())
        for k in range(count)
    )  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO files (path, size, mtime_ns, inode, sha256, format, width, height, mode, "
            "lossless, jpeg_quality, ahash, dhash, phash, whash, thumb) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()


def test_duplicates_in_a_large_index_never_read_every_row(
    dupes_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30,000 entries: the sampled search finds the same groups, only the compact hash table is
    loaded (not every entry object: 2 GB at 1,000,000 entries), and every phase reports."""
    from samepix.index import Index, Progress
    from samepix.search import plan_search

    with lib(dupes_folder) as library:
        expected = [[str(c.path) for c in g.copies] for g in library.duplicates()]
    add_synthetic_rows(default_db_path(dupes_folder), 30_000, seed=4)

    def read_all(self: Index) -> None:
        raise AssertionError("dupes read every entry")

    monkeypatch.setattr(Index, "entries", read_all)
    reports: list[Progress] = []
    with Library(dupes_folder, workers=1, progress=reports.append) as library:
        groups = library.duplicates(update=False)
    assert [[str(c.path) for c in g.copies] for g in groups] == expected
    last = {r.stage: r for r in reports}
    assert list(last) == [
        "loading",
        "searching",
        "screening",
        "comparing candidate pairs",
        "comparing copies with the best",
    ]
    n = 30_000 + 9
    assert last["loading"].done == last["loading"].total == n
    plan = plan_search(n, library.policy.candidate_hash_distance)
    assert plan.method == "sampled"
    assert last["searching"].done == last["searching"].total == 2 * plan.tables
    assert last["screening"].done == last["screening"].total > 0
    final = last["comparing copies with the best"]
    assert final.done == final.total == 5  # 4 copies in one group, 1 in the other
