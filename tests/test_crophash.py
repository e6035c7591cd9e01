"""Crop hashes (samepix.crophash) and the index's crop-hash table: made, kept, migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samepix.crophash import STORED_CROPS, crop_hashes
from samepix.index import Index, update_index

from .helpers import encode


def kodak(name: str = "kodim05.png") -> np.ndarray:
    from .conftest import shared_file

    return np.asarray(Image.open(shared_file("kodak", name)).convert("RGB"))


def grey(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels).convert("L")


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min(pHash, dHash) distance of each row of ``a`` to ``b`` (one row)."""
    x = a.view(np.uint64) ^ b.view(np.uint64)
    return np.bitwise_count(x).min(axis=1)


def test_a_crop_lands_near_its_slot_and_other_pictures_do_not() -> None:
    k5 = kodak()
    stored = crop_hashes(grey(k5))
    assert stored.shape == (len(STORED_CROPS), 2) and stored.dtype == np.int64
    h, w = k5.shape[:2]
    # 85 % of the width at the right, 70 % of the height at the top: slot (0.85, 0.7, 1, 0).
    crop = k5[: round(0.7 * h), w - round(0.85 * w) :]
    query = crop_hashes(grey(crop))[:1]
    slot = STORED_CROPS.index((0.85, 0.7, 1.0, 0.0))
    assert distance(stored[slot : slot + 1], query)[0] <= 4
    assert distance(stored[:1], query)[0] > 12  # the whole picture's hashes are far
    other = crop_hashes(grey(kodak("kodim19.png")))
    assert distance(other, query).min() > 12


def test_crop_hashes_of_odd_shapes() -> None:
    for shape in ((1, 1), (3, 500), (500, 3), (17, 23)):
        out = crop_hashes(Image.new("L", (shape[1], shape[0]), 128))
        assert out.shape == (len(STORED_CROPS), 2)
    with pytest.raises(ValueError):
        crop_hashes(np.zeros((0, 4), np.uint8))


def folder_with(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in names:
        (folder / f"{name}.jpg").write_bytes(encode(kodak(f"{name}.png"), "JPEG", quality=90))
    return folder


def test_index_keeps_crop_hashes_for_new_moved_and_copied_files(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "kodim05", "kodim19")
    with Index(folder) as index:
        update_index(index, workers=1)
        table = index.crop_table()
        assert len(table) == 2 and table.missing == 0
        assert table.hashes.shape == (2, len(STORED_CROPS), 2)
        (folder / "kodim05.jpg").rename(folder / "moved.jpg")
        (folder / "copy.jpg").write_bytes((folder / "kodim19.jpg").read_bytes())
        summary = update_index(index, workers=1)
        assert (summary.moved, summary.added, summary.decoded) == (1, 1, 0)  # nothing decoded
        table = index.crop_table()
        assert len(table) == 3 and table.missing == 0
        by_path = {e.path: e for e in index.entries()}
        rows = dict(zip(table.ids.tolist(), table.hashes, strict=True))
        ids = dict(index._query("SELECT path, id FROM files"))
        assert np.array_equal(rows[ids["copy.jpg"]], rows[ids["kodim19.jpg"]])
        assert set(by_path) == {"moved.jpg", "copy.jpg", "kodim19.jpg"}
        (folder / "copy.jpg").unlink()
        update_index(index, workers=1)
        assert len(index.crop_table()) == 2  # the row went with its file
    # Cached beside the database and read back while current.
    assert Path(f"{folder}/.samepix/index.db-crops.npy").exists()
    with Index(folder) as index:
        assert len(index.crop_table()) == 2


def test_an_index_from_before_crop_hashes_is_migrated(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "kodim05", "kodim19")
    with Index(folder) as index:
        update_index(index, workers=1)
    db = folder / ".samepix" / "index.db"
    # What an older samepix left: the same schema version, no crop table, no grid in meta.
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TRIGGER files_delete_crops; DROP TRIGGER crop_hashes_insert; "
        "DROP TABLE crop_hashes; DELETE FROM meta WHERE key = 'crop_grid';"
    )
    conn.close()
    with Index(folder, read_only=True) as index:  # read-only: used as it is
        assert len(index.crop_table()) == 0 and index.crop_table().missing == 2
    with Index(folder) as index:  # opened for writing: the table is added, empty
        assert len(index.crop_table()) == 0 and index.crop_table().missing == 2
        assert update_index(index, workers=1).decoded == 0  # filled when a crop search asks
        summary = update_index(index, workers=1, fill_crop_hashes=True)
        # Described again to add the crop hashes; not counted as changed files.
        assert (summary.decoded, summary.added, summary.updated, summary.unchanged) == (2, 0, 0, 2)
        assert len(index.crop_table()) == 2 and index.crop_table().missing == 0
        assert update_index(index, workers=1, fill_crop_hashes=True).decoded == 0  # once only


def test_crop_hashes_of_another_grid_are_made_again(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "kodim05")
    with Index(folder) as index:
        update_index(index, workers=1)
    conn = sqlite3.connect(folder / ".samepix" / "index.db")
    conn.execute("UPDATE meta SET value = 'another grid' WHERE key = 'crop_grid'")
    conn.commit()
    conn.close()
    with Index(folder) as index:
        assert len(index.crop_table()) == 0
        assert update_index(index, workers=1, fill_crop_hashes=True).decoded == 1
        assert len(index.crop_table()) == 1


def test_a_file_added_by_sync_is_patched_into_a_loaded_crop_table(tmp_path: Path) -> None:
    from samepix.index import IndexEntry, describe_blob
    from samepix.sources import Blob

    folder = folder_with(tmp_path, "kodim05")
    with Index(folder) as index:
        update_index(index, workers=1)
        before = index.crop_table()  # loaded, as a crop search leaves it
        path = folder / "new.jpg"
        path.write_bytes(encode(kodak("kodim19.png"), "JPEG", quality=90))
        st = path.stat()
        descriptor = describe_blob(Blob(data=path.read_bytes(), name="new.jpg"))
        index.add(IndexEntry("new.jpg", st.st_size, st.st_mtime_ns, st.st_ino, descriptor))
        patched = index.crop_table()
        assert patched is not before and len(patched) == 2
        index._crops = None  # what a reload from the database gives
        reloaded = index.crop_table()
        assert np.array_equal(np.sort(patched.ids), np.sort(reloaded.ids))
        order_p, order_r = np.argsort(patched.ids), np.argsort(reloaded.ids)
        assert np.array_equal(patched.hashes[order_p], reloaded.hashes[order_r])
