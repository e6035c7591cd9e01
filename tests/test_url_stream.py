"""samepix.url_stream: a URL list read and synced a window of lines at a time — the same
lines and line numbers as reading it whole, repeats recognised across windows (the URLs seen
kept in a temporary SQLite file past the first window), the same sync decisions."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import samepix.url_stream
from samepix import Library
from samepix.sync import parse_url_list, parse_window, split_lines
from samepix.url_stream import SeenUrls, read_lines, url_windows

from .helpers import Resource, http_server
from .test_sync import decisions, pictures_in, png

TEXT = (
    b"\xef\xbb\xbfhttp://h/a.png\n"  # a byte-order mark first
    b"http://h/b\xe2\x80\xa8c.png\r\n"  # U+2028 inside a line: not a line end
    b"http://h/d.png\rhttp://h/e\x0cf.png\n"  # \r alone ends a line; a form feed does not
    b"http://h/\xff.png\n"  # not UTF-8
    b"\n# a comment\nhttp://h/a.png   # again, with a note\n"
    b"http://h/last.png"  # no newline at the end
)


def test_lines_read_as_needed_are_the_lines_of_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(TEXT)
    whole = split_lines(TEXT.decode("utf-8", errors="replace"))
    streamed = list(read_lines(str(path)))
    assert streamed[0] == "\ufeffhttp://h/a.png"  # the BOM is the parser's to drop
    assert streamed[1:] == whole[1:]
    assert parse_url_list(streamed) == parse_url_list(whole)


def test_standard_input_is_read_as_needed_and_left_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(TEXT)
    stdin = io.TextIOWrapper(io.BytesIO(TEXT))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert list(read_lines("-")) == list(read_lines(str(path)))
    assert not stdin.buffer.closed


def test_a_missing_list_fails_when_opened(tmp_path: Path) -> None:
    from samepix.errors import SourceError

    with pytest.raises(SourceError, match=r"missing\.txt: cannot read the URL list"):
        read_lines(str(tmp_path / "missing.txt"))


def test_repeats_are_recognised_across_windows_on_disk() -> None:
    lines = [f"http://h/{n % 7}.png" for n in range(30)] + ["not a url", "http://h/3.png"]
    whole = parse_url_list(lines)
    seen = SeenUrls(in_memory=4)  # past 4 URLs they go to a temporary SQLite file
    parts = [parse_window(chunk, seen) for chunk in url_windows(lines, 5)]
    assert seen._db is not None
    seen.close()
    assert [u for p in parts for u in p.urls] == list(whole.urls)
    assert [r for p in parts for r in p.repeated] == list(whole.repeated)
    assert [m for p in parts for m in p.malformed] == list(whole.malformed)
    assert whole.repeated[-1].first_line == 4  # "http://h/3.png" first listed on line 4


def test_a_sync_of_many_windows_decides_as_one_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = {
        f"/p{seed}.png": Resource(png(seed), "image/png", etag=f'"e{seed}"') for seed in range(8)
    }
    site["/copy.png"] = Resource(png(3), "image/png", etag='"c"')  # the bytes of p3.png
    with http_server(dict(site)) as server:
        urls = [server.url(p) for p in site]
        lines = [*urls, "# a comment", urls[2], "ftp://h/x.png", *urls[:3]]

        def run(name: str) -> tuple[dict[str, str], Path, object]:
            folder = tmp_path / name
            folder.mkdir()
            with Library(folder, workers=1) as lib:
                summary = lib.sync(lines, concurrency=3)
            return decisions(summary), folder, summary

        one, one_folder, one_summary = run("one-window")
        monkeypatch.setattr(samepix.url_stream, "WINDOW_LINES", 3)
        many, many_folder, many_summary = run("many-windows")
    assert many == one
    assert pictures_in(many_folder) == pictures_in(one_folder)
    assert many_summary.repeated == one_summary.repeated  # type: ignore[attr-defined]
    assert len(many_summary.repeated) == 4  # type: ignore[attr-defined]
    assert one["copy.png"] == "skipped-bytes"


def test_a_sync_keeping_only_failures_has_the_same_totals_and_report(tmp_path: Path) -> None:
    import re

    from samepix.report import format_sync

    site = {
        f"/p{seed}.png": Resource(png(seed), "image/png", etag=f'"e{seed}"') for seed in range(4)
    }
    site["/copy.png"] = Resource(png(2), "image/png", etag='"c"')
    with http_server(dict(site)) as server:
        lines = [server.url(p) for p in site] + [server.url("/gone.png"), "ftp://h/x.png"]
        summaries = []
        for keep in (True, False):
            folder = tmp_path / f"keep-{keep}"
            folder.mkdir()
            with Library(folder, workers=1) as lib:
                summaries.append(lib.sync(lines, concurrency=2, keep_items=keep))
    every, failures = summaries
    assert [i.decision for i in failures.items] == ["failed", "failed"]
    assert len(every.items) == failures.urls == 7
    for name in ("downloaded", "skipped_bytes", "failed", "bytes_downloaded", "ok"):
        assert getattr(failures, name) == getattr(every, name), name
    assert failures.downloaded == 4 and failures.bytes_downloaded > 0

    def text(summary: object) -> str:
        out = format_sync(summary)  # type: ignore[arg-type]
        return re.sub(r"keep-(True|False)", "DIR", re.sub(r"in [0-9.]+ s", "in T s", out))

    assert text(failures) == text(every)
