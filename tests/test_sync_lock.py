"""``sync --wait``: a second sync into a local folder waits for the first one's lock (a real
``flock`` held by this process) instead of refusing, and refuses once its wait is over."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from samepix.sync import LOCK_NAME, _FolderLock

from .helpers import one_line_error, run_cli


def test_sync_waits_for_the_folder_lock_then_runs(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    (folder / ".samepix").mkdir(parents=True)
    urls = tmp_path / "urls.txt"
    urls.write_text("# nothing to download\n")
    lock = _FolderLock(folder / ".samepix" / LOCK_NAME, folder)
    with lock:
        refused = run_cli("sync", str(urls), str(folder), "--wait", "0.5", text=True)
        one_line_error(refused, f"another samepix sync is running on {folder}")
        timer = threading.Timer(1.0, lock.__exit__)
        timer.start()
        started = time.monotonic()
        waited = run_cli("sync", str(urls), str(folder), "--wait", "30", text=True)
        timer.join()
    assert waited.returncode == 0, waited.stderr
    assert time.monotonic() - started >= 1.0
    bad = run_cli("sync", str(urls), str(folder), "--wait", "-1", text=True)
    one_line_error(bad, "--wait must be 0 to 86400 seconds, got -1")
