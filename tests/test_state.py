"""state: the SQLite state file (real files, real crashes) and what compare reuses from it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from samepix.compare import Comparison, compare
from samepix.errors import StateError
from samepix.fetch import Fetcher
from samepix.policy import DEFAULT_POLICY
from samepix.state import FetchState, UrlRecord, result_key

from .helpers import Resource, encode, http_server

ROOT = Path(__file__).resolve().parents[1]


def record(i: int, **changes: object) -> UrlRecord:
    fields: dict[str, object] = {
        "url": f"https://example.com/{i}.jpg",
        "etag": f'"{i}"',
        "last_modified": None,
        "size": 1000 + i,
        "sha256": f"{i:064x}",
        "content_type": "image/jpeg",
        "fetched_at": 1.0,
        "checked_at": 1.0,
    }
    fields.update(changes)
    return UrlRecord(**fields)  # type: ignore[arg-type]


# --- the file ---------------------------------------------------------------------------------


def test_round_trip_and_lazy_creation(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.sqlite3"
    state = FetchState(path)
    assert not path.exists()  # nothing is written until something is asked
    with state:
        assert state.get("https://example.com/0.jpg") is None
        state.remember(record(0))
        state.remember_many(record(i) for i in range(1, 5))
        assert state.get(record(3).url) == record(3)
        state.confirm(record(3).url, etag='"new"', checked_at=9.0)
        confirmed = state.get(record(3).url)
        assert confirmed is not None
        assert (confirmed.etag, confirmed.checked_at, confirmed.sha256) == (
            '"new"',
            9.0,
            record(3).sha256,
        )
        state.forget(record(0).url)
        assert len(state) == 4
    with FetchState(path) as reopened:  # a second process would see the same
        assert reopened.get(record(4).url) == record(4)
        assert reopened.get(record(0).url) is None


def test_confirmations_are_written_in_batches_and_never_over_a_newer_record(
    tmp_path: Path,
) -> None:
    from samepix.state import CONFIRM_BATCH

    path = tmp_path / "state.sqlite3"

    def written(etag: str) -> int:
        con = sqlite3.connect(path)
        try:
            return int(
                con.execute("SELECT count(*) FROM urls WHERE etag = ?", (etag,)).fetchone()[0]
            )
        finally:
            con.close()

    n = CONFIRM_BATCH + 10
    with FetchState(path) as state:
        state.remember_many(record(i) for i in range(n))
        state.preload(record(i).url for i in range(n))
        for i in range(10):
            state.confirm(record(i).url, etag='"new"', checked_at=5.0)
        seen = state.get(record(3).url)
        assert seen is not None and (seen.etag, seen.checked_at) == ('"new"', 5.0)
        assert written('"new"') == 0  # not a transaction per URL
        for i in range(10, CONFIRM_BATCH):
            state.confirm(record(i).url, etag='"new"', checked_at=5.0)
        assert written('"new"') == CONFIRM_BATCH  # one batch, written
        state.confirm(record(n - 1).url, etag='"stale"', checked_at=6.0)
        state.remember(record(n - 1, etag='"fresh"'))  # a download after the 304
    with FetchState(path) as reopened:
        last = reopened.get(record(n - 1).url)
        assert last is not None and last.etag == '"fresh"'
        assert written('"new"') == CONFIRM_BATCH


def test_validators_give_conditional_headers() -> None:
    both = record(1, last_modified="Wed, 21 Oct 2015 07:28:00 GMT")
    assert both.conditional_headers() == {
        "If-None-Match": '"1"',
        "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    assert not record(2, etag=None).has_validators


def test_results_keyed_by_both_contents_policy_and_version(tmp_path: Path) -> None:
    settings = DEFAULT_POLICY.as_dict()
    key = result_key("a" * 64, "b" * 64, settings)
    assert key != result_key("b" * 64, "a" * 64, settings)  # order matters
    assert key != result_key("a" * 64, "b" * 64, DEFAULT_POLICY.with_(min_ssim=0.9).as_dict())
    with FetchState(tmp_path / "s") as state:
        assert state.result(key) is None
        state.save_result(key, {"verdict": "same", "x": [1, 2]})
        assert state.result(key) == {"verdict": "same", "x": [1, 2]}


def test_old_results_are_pruned(tmp_path: Path) -> None:
    with FetchState(tmp_path / "s", max_results=10) as state:
        for i in range(256):
            state.save_result(f"k{i}", {"i": i})
        con = sqlite3.connect(state.path)
        kept = [row[0] for row in con.execute("SELECT key FROM results ORDER BY saved_at")]
        con.close()
    assert kept == [f"k{i}" for i in range(246, 256)]  # the newest ten


def test_threads_share_one_state(tmp_path: Path) -> None:
    state = FetchState(tmp_path / "s")
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(offset, offset + 50):
                state.remember(record(i))
                assert state.get(record(i).url) == record(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(state) == 200
    state.close()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"this is not a database, just text" * 100, "corrupted"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "corrupted"),
    ],
    ids=["text", "damaged-header"],
)
def test_corrupted_file_names_the_file_and_the_way_out(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(content)
    with pytest.raises(StateError) as info:
        FetchState(path).get("https://example.com/a.jpg")
    message = str(info.value)
    assert message.startswith(str(path)) and needle in message
    assert "--no-cache" in message and "delete" in message
    assert "\n" not in message


def test_damaged_pages_are_reported_too(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with FetchState(path) as state:
        state.remember_many(record(i) for i in range(2000))
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2 : page * 6] = b"\x07" * (page * 4)  # scribble over table pages
    path.write_bytes(bytes(data))
    with pytest.raises(StateError, match="corrupted"), FetchState(path) as state:
        for i in range(2000):
            state.get(record(i).url)


def test_another_sqlite_database_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (text TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StateError, match="not a samepix fetch state file"):
        FetchState(path).get("x")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with FetchState(path) as state:
        state.remember(record(1))
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(StateError, match="newer samepix"):
        FetchState(path).get("x")


def test_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StateError, match="--no-cache"):
        FetchState(blocker / "state.sqlite3").get("x")


# --- crashes ----------------------------------------------------------------------------------

_WRITER = """
import sys, time
from samepix.state import FetchState, UrlRecord

def rec(i):
    url = f"https://example.com/{i}"
    return UrlRecord(url, f'"{i}"', None, i, f"{i:064x}", None, None, 1.0, 1.0)

state = FetchState(sys.argv[1])
state.remember_many(rec(i) for i in range(100))  # committed
mode = sys.argv[2]
if mode == "mid-transaction":
    def batch():
        for i in range(100, 150):
            yield rec(i)
        print("in transaction", flush=True)  # 50 rows written, not committed
        time.sleep(60)
        yield rec(150)
    state.remember_many(batch())
else:  # commit batches of 100 as fast as possible until killed
    print("writing", flush=True)
    n = 1
    while True:
        state.remember_many(rec(n * 100 + i) for i in range(100))
        n += 1
"""


def _start_writer(path: Path, mode: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), mode],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # wait for the signal line
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def _assert_intact(path: Path) -> int:
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with FetchState(path) as state:
        count = len(state)
        for i in (0, 99):
            assert state.get(f"https://example.com/{i}") is not None
    return count


def test_sigkill_mid_transaction_leaves_the_last_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    proc = _start_writer(path, "mid-transaction")
    _kill(proc)
    assert _assert_intact(path) == 100  # the 50 uncommitted rows are gone, the rest is there
    with FetchState(path) as state:  # and the file takes writes again
        state.remember(UrlRecord("https://example.com/new", None, None, 1, "0" * 64))
        assert len(state) == 101


def test_sigkill_at_random_moments_never_leaves_half_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    rng = np.random.default_rng(7)
    for _ in range(3):
        proc = _start_writer(path, "batches")
        time.sleep(float(rng.uniform(0.01, 0.15)))
        _kill(proc)
        count = _assert_intact(path)
        assert count % 100 == 0 and count >= 100  # whole batches only


# --- compare with a state file: what a 304 reuses --------------------------------------------


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, Path | bytes]:
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    png = encode(pixels, "PNG")
    files = {"same.png": png, "same.bmp": encode(pixels, "BMP")}
    files["other.png"] = encode(np.ascontiguousarray(pixels[::-1]), "PNG")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {"png": png, **{name: tmp_path / name for name in files}}


def test_unchanged_url_reuses_the_stored_result(tmp_path: Path, pictures: dict) -> None:
    png, bmp = pictures["png"], pictures["same.bmp"]
    with http_server({"/a.png": Resource(png, "image/png", etag='"v1"')}) as server:
        url = server.url("/a.png")
        with Fetcher(state=tmp_path / "s") as fetcher:
            first = compare(url, bmp, fetcher=fetcher)
            sent = server.body_bytes_sent
            second = compare(url, bmp, fetcher=fetcher)
        assert server.body_bytes_sent == sent == len(png)  # the second run: 0 body bytes
    assert first.rung == "pixels" and not first.reused and first.transferred == len(png)
    assert second.reused and second.transferred == 0
    assert second.verdict == first.verdict and second.reasons == first.reasons
    assert second.a.source == url and second.b.source == str(bmp)


def test_changed_local_file_or_policy_downloads_again(tmp_path: Path, pictures: dict) -> None:
    png, bmp, other = pictures["png"], pictures["same.bmp"], pictures["other.png"]
    with http_server({"/a.png": Resource(png, "image/png", etag='"v1"')}) as server:
        url = server.url("/a.png")
        with Fetcher(state=tmp_path / "s") as fetcher:
            compare(url, bmp, fetcher=fetcher)
            changed_file = compare(url, other, fetcher=fetcher)
            assert server.body_bytes_sent == 2 * len(png)
            stricter = compare(url, bmp, fetcher=fetcher, policy=DEFAULT_POLICY.with_(min_ssim=0.8))
            assert server.body_bytes_sent == 3 * len(png)
            again = compare(url, other, fetcher=fetcher)
            assert server.body_bytes_sent == 3 * len(png)
    assert not changed_file.reused and not stricter.reused and again.reused
    assert again.verdict == changed_file.verdict


def test_unchanged_url_and_saved_copy_need_no_download(tmp_path: Path, pictures: dict) -> None:
    # The state knows the URL's SHA-256 (from a plain fetch) but has no stored result: the
    # local file with those very bytes stands in for the body.
    png, saved = pictures["png"], pictures["same.png"]
    with http_server({"/a.png": Resource(png, "image/png", etag='"v1"')}) as server:
        url = server.url("/a.png")
        with Fetcher(state=tmp_path / "s") as fetcher:
            fetcher.get(url)
            result = compare(url, saved, fetcher=fetcher)
        assert server.body_bytes_sent == len(png)
    assert result.verdict.value == "identical" and result.rung == "bytes"
    assert result.transferred == 0 and result.a.source == url


def test_server_without_validators_still_reuses_by_content(tmp_path: Path, pictures: dict) -> None:
    png, bmp = pictures["png"], pictures["same.bmp"]
    with http_server({"/a.png": Resource(png, "image/png")}) as server:
        url = server.url("/a.png")
        with Fetcher(state=tmp_path / "s") as fetcher:
            compare(url, bmp, fetcher=fetcher)
            second = compare(url, bmp, fetcher=fetcher)
    assert second.reused and second.transferred == len(png)  # downloaded, but not decoded again


def test_local_pairs_are_not_stored(tmp_path: Path, pictures: dict) -> None:
    with Fetcher(state=tmp_path / "s") as fetcher:
        compare(pictures["same.png"], pictures["same.bmp"], fetcher=fetcher)
    assert not (tmp_path / "s").exists()


def test_comparison_dict_round_trip(pictures: dict) -> None:
    result = compare(pictures["same.png"], pictures["same.bmp"])
    assert Comparison.from_dict(result.to_dict()) == result
