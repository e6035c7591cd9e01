"""Folders on object storage: a real S3 API (moto's standalone server on 127.0.0.1) talked to by
s3fs over HTTP, and fsspec's memory filesystem; index, find --in and dupes on ``s3://``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samepix import Library
from samepix.errors import SourceError
from samepix.index import Index, update_index
from samepix.storage import ObjectPath, is_object_url, put_new, remote_db_path

from .helpers import encode

s3fs = pytest.importorskip("s3fs", reason="samepix[s3] is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytestmark = pytest.mark.s3

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-secret-key-never-shown"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """moto's S3 server on a free port of 127.0.0.1, and the environment that points boto at
    it (the way a user configures an endpoint: no samepix option involved)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield env
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()


def _png(seed: int, side: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
    return encode(np.kron(base, np.ones((8, 8, 1), dtype=np.uint8)), "PNG")


@pytest.fixture
def bucket(s3_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    fs = s3fs.S3FileSystem()
    name = "b-" + request.node.name.lower().replace("_", "-")[:40].strip("-[]")
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    fs.mkdir(name)
    yield fs, name
    fs.rm(name, recursive=True)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "samepix", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=180,
    )


def test_object_urls_are_told_apart_from_web_and_local_ones() -> None:
    assert is_object_url("s3://bucket/prefix")
    assert is_object_url("memory://x")
    assert not is_object_url("https://example.com/a.jpg")
    assert not is_object_url("file:///tmp/a.jpg")
    assert not is_object_url("/tmp/s3:/x")
    assert not is_object_url("ftp://host/x")  # not a store samepix reads
    assert remote_db_path("s3://bucket/a").name.startswith("bucket-")
    assert remote_db_path("s3://bucket/a") != remote_db_path("s3://bucket/b")


def test_index_of_a_bucket_equals_the_index_of_the_same_files_on_disk(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    for n in range(6):
        data = _png(n)
        (local / "sub" / f"p{n}.png").write_bytes(data)
        fs.pipe(f"{name}/pics/sub/p{n}.png", data)
    fs.pipe(f"{name}/pics/notes.txt", b"not an image: not listed")
    fs.pipe(f"{name}/pics/broken.jpg", b"not a picture")
    (local / "broken.jpg").write_bytes(b"not a picture")

    with Index(local) as index:
        update_index(index, workers=1)
        expected = [(e.path, e.sha256, e.hashes, e.descriptor.thumb) for e in index.entries()]
    db = tmp_path / "remote.db"
    with Index(f"s3://{name}/pics", db) as index:
        summary = update_index(index, workers=2)
        got = [(e.path, e.sha256, e.hashes, e.descriptor.thumb) for e in index.entries()]
    assert got == expected
    assert summary.added == 6
    assert [u.path for u in summary.unreadable] == ["broken.jpg"]


def test_incremental_update_keyed_by_etag_size_and_mtime(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    for n in range(4):
        fs.pipe(f"{name}/pics/p{n}.png", _png(n))
    url, db = f"s3://{name}/pics", tmp_path / "remote.db"
    with Index(url, db) as index:
        assert update_index(index, workers=1).added == 4
        again = update_index(index, workers=1)
        assert (again.unchanged, again.decoded) == (4, 0)  # nothing read again

        fs.pipe(f"{name}/pics/p1.png", _png(11))  # rewritten: new ETag
        fs.mv(f"{name}/pics/p2.png", f"{name}/pics/renamed.png")  # renamed
        fs.pipe(f"{name}/pics/new.png", _png(12))
        fs.rm(f"{name}/pics/p3.png")
        changed = update_index(index, workers=1)
    assert (changed.added, changed.updated, changed.moved, changed.removed) == (1, 1, 1, 1)
    assert changed.moves == (("p2.png", "renamed.png"),)
    assert changed.decoded == 2  # the rename was recognised by its SHA-256, not decoded


def test_find_and_dupes_in_a_bucket_through_the_cli(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    for n in range(3):
        fs.pipe(f"{name}/pics/p{n}.png", _png(n))
    fs.pipe(f"{name}/pics/again/p0-copy.png", _png(0))
    query = tmp_path / "query.png"
    query.write_bytes(_png(1))
    db = str(tmp_path / "remote.db")

    found = _cli("find", str(query), "--in", f"s3://{name}/pics", "--db", db, "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert [m["path"] for m in result["matches"]] == [f"s3://{name}/pics/p1.png"]

    dupes = _cli("dupes", f"s3://{name}/pics", "--db", db, "--json")
    assert dupes.returncode == 0, dupes.stderr
    groups = json.loads(dupes.stdout)
    groups = groups["groups"] if isinstance(groups, dict) else groups
    paths = sorted(c["path"] for g in groups for c in g["copies"])
    assert paths == [f"s3://{name}/pics/again/p0-copy.png", f"s3://{name}/pics/p0.png"]


def test_index_default_db_is_local_and_keyed_by_the_url(
    bucket: tuple[Any, str], tmp_path: Path
) -> None:
    fs, name = bucket
    fs.pipe(f"{name}/pics/p0.png", _png(0))
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    proc = _cli("index", f"s3://{name}/pics", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["db"].startswith(str(tmp_path / "data" / "samepix" / "remote"))
    assert fs.ls(f"{name}/pics") == [f"{name}/pics/p0.png"]  # nothing written into the bucket


def test_missing_bucket_is_one_line(s3_env: dict[str, str], tmp_path: Path) -> None:
    proc = _cli("index", "s3://no-such-bucket/pics", "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: s3://no-such-bucket/pics: not a folder"]


def test_missing_credentials_are_one_line_and_no_secret_is_shown(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    proc = _cli("index", "s3://some-bucket/pics", "--db", str(tmp_path / "x.db"), env=env)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines == [
        "error: s3://some-bucket/pics: no credentials for object storage (set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws)"
    ]


def _moto_auth(endpoint: str, actions_before_auth: float) -> None:
    """Turn moto's access checks on (0: from the next request) or off (a huge count)."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=str(actions_before_auth).encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_denied_access_is_one_line_without_the_secret(
    bucket: tuple[Any, str], s3_env: dict[str, str], tmp_path: Path
) -> None:
    fs, name = bucket
    fs.pipe(f"{name}/pics/p0.png", _png(0))
    _moto_auth(s3_env["AWS_ENDPOINT_URL"], 0)  # keys unknown to its IAM are refused now
    try:
        proc = _cli("index", f"s3://{name}/pics", "--db", str(tmp_path / "x.db"))
    finally:
        _moto_auth(s3_env["AWS_ENDPOINT_URL"], 1e9)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: s3://{name}/pics: "), lines
    assert "denied" in lines[0] or "Forbidden" in lines[0] or "AccessKey" in lines[0], lines
    assert SECRET not in proc.stderr + proc.stdout


def test_put_new_writes_whole_and_never_over_another_object(bucket: tuple[Any, str]) -> None:
    fs, name = bucket
    target = ObjectPath(f"s3://{name}/in/a.png")
    assert put_new(target, b"first") is True
    assert put_new(target, b"second") is False  # If-None-Match: * refused it
    assert fs.cat(f"{name}/in/a.png") == b"first"


def test_put_new_on_a_filesystem_without_conditional_writes() -> None:
    pytest.importorskip("fsspec")
    target = ObjectPath("memory://samepix-test/put/a.bin")
    assert put_new(target, b"first") is True
    assert put_new(target, b"second") is False
    assert target.fs.cat(target.key) == b"first"


def test_memory_filesystem_library(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for n in range(3):
        fs.pipe(f"/lib-test/p{n}.png", _png(n))
    fs.pipe("/lib-test/sub/copy.png", _png(2))
    with Library("memory://lib-test", db=tmp_path / "m.db", workers=1) as lib:
        assert lib.update().added == 4
        result = lib.find("memory://lib-test/p1.png")
        assert [str(m.path) for m in result.matches] == ["memory://lib-test/p1.png"]
        groups = lib.duplicates()
        assert [str(c.path) for c in groups[0].copies] == [
            "memory://lib-test/p2.png",
            "memory://lib-test/sub/copy.png",
        ]


def test_a_missing_object_is_a_source_error() -> None:
    pytest.importorskip("fsspec")
    from samepix.limits import DEFAULT_LIMITS

    with pytest.raises(SourceError, match="no such bucket, folder or object"):
        ObjectPath("memory://nowhere/x.png").read(DEFAULT_LIMITS)


def test_index_of_a_bucket_on_dask_workers(bucket: tuple[Any, str], tmp_path: Path) -> None:
    """Shards read the bucket from Dask worker processes (credentials and endpoint from the
    workers' own environment); the coordinator writes the local index."""
    pytest.importorskip("distributed", reason="samepix[dask] is not installed")
    from samepix.executor import DaskExecutor

    fs, name = bucket
    for n in range(8):
        fs.pipe(f"{name}/pics/p{n}.png", _png(n))
    executor = DaskExecutor("local:2")
    try:
        with Index(f"s3://{name}/pics", tmp_path / "remote.db") as index:
            summary = update_index(index, executor=executor)
            assert len(index) == 8
    finally:
        executor.close()
    assert (summary.added, summary.decoded, summary.unreadable) == (8, 8, ())


def test_each_object_is_read_with_one_request(
    bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing's stat (size, mtime, ETag) is kept; reading an object is one GET, no HEAD."""
    fs, name = bucket
    for n in range(3):
        fs.pipe(f"{name}/pics/p{n}.png", _png(n))
    heads: list[str] = []
    real_info = s3fs.S3FileSystem._info

    async def counting_info(self: Any, path: str, **kwargs: Any) -> Any:
        heads.append(path)
        return await real_info(self, path, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_info", counting_info)
    s3fs.S3FileSystem.clear_instance_cache()  # instances bind their methods when made
    with Index(f"s3://{name}/pics", tmp_path / "remote.db") as index:
        assert update_index(index, workers=1).added == 3
    assert not [h for h in heads if h.endswith(".png")], heads
