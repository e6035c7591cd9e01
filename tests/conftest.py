"""Shared test fixtures: where the real photographs live, and small images made in the test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# ../shared/data beside the project root (see shared/data/README.md); never copied into the repo.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """Path of a file under ../shared/data, or skip the test with a clear message."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data absent: {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The CLI keeps its fetch state in the user cache directory: point that (XDG) at a temp
    folder, for this process and every samepix subprocess, so tests never touch ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    return shared_file("kodak")


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    return shared_file("photos")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return shared_file("reference")


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """scikit-image's 512×512 grey `camera` (shipped in its wheel; REFERENCES.md fixture 1)."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.camera())


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's 512×512 RGB `astronaut` (shipped in its wheel)."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real ``dask.distributed.LocalCluster`` for a test module: two single-threaded worker
    processes, with nannies, as a deployment runs them (skipped without samepix[dask])."""
    distributed = pytest.importorskip("distributed", reason="samepix[dask] is not installed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=50,
    ) as cluster:
        yield cluster
