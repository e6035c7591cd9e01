"""``dupes`` with an executor (samepix.dupes_shards): candidate pairs compared on worker
processes — local ones, and a real ``dask.distributed.LocalCluster`` — give the very groups,
order and comparisons of a plain run; the coordinator only joins."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from samepix import Library
from samepix.executor import Executor, LocalExecutor

from .test_library import dupes_folder  # a fixture, used by name

__all__ = ["dupes_folder"]


def _groups(folder: Path, executor: Executor | None) -> list[list[tuple[str, Any, Any]]]:
    with Library(folder, workers=1, executor=executor) as library:
        groups = library.duplicates()
    return [
        [
            (
                c.path.relative_to(folder).as_posix(),
                None if c.comparison is None else c.comparison.verdict.value,
                None if c.comparison is None else c.comparison.reasons,
            )
            for c in g.copies
        ]
        for g in groups
    ]


def test_dupes_on_local_worker_processes_groups_as_a_plain_run(
    dupes_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = importlib.import_module("samepix.compare")
    here: list[str] = []  # the first file of each comparison made in this process
    real = module.compare

    def counted(a: Any, b: Any, **kw: Any) -> Any:
        here.append(Path(a.name).name)  # in this process only: the workers have their own copy
        return real(a, b, **kw)

    monkeypatch.setattr(module, "compare", counted)
    plain = _groups(dupes_folder, None)
    assert [len(g) for g in plain] == [5, 2]
    alone = len(here)
    here.clear()
    assert _groups(dupes_folder, LocalExecutor(2)) == plain
    # The candidate pairs were compared by the workers; this process compared at most a
    # report's (best copy, copy) pairs that no candidate comparison had made.
    assert len(here) < alone
    assert len(here) <= sum(len(g) - 1 for g in plain)
    assert set(here) <= {"one.png", "two.jpg"}, here  # the best copies


@pytest.mark.dask
def test_dupes_on_dask_groups_as_a_plain_run(
    cluster: Any,
    dupes_folder: Path,
    tmp_path: Path,
) -> None:
    import shutil

    from samepix.executor import DaskExecutor

    other = tmp_path / "other"
    shutil.copytree(dupes_folder, other)  # the Dask run builds its own index there
    plain = _groups(dupes_folder, None)
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        assert _groups(other, executor) == plain
    finally:
        executor.close()
