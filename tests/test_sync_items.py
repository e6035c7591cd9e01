"""samepix.sync_items: a sync's items and repeated lines spooled to a temporary SQLite file and
read back in list order — the reports (--json, --csv, --html, --verbose) streamed from it are
the same, byte for byte, as from the items kept in memory. Real local HTTP servers, real
folders, the real command."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from samepix import Library, SyncSummary
from samepix.csvout import write_sync
from samepix.html_report import render, sync_report
from samepix.json_stream import write_json
from samepix.report import format_sync, sync_lines
from samepix.sync_items import ItemSpool, Spooled
from samepix.terminal import json_text

from .helpers import Resource, Response, http_server, run_cli
from .test_sync import half, png


def _site() -> dict[str, Resource | Response]:
    site: dict[str, Resource | Response] = {
        f"/p{seed}.png": Resource(png(seed), "image/png", etag=f'"e{seed}"') for seed in range(5)
    }
    site["/copy.png"] = Resource(png(2), "image/png", etag='"c"')  # p2's bytes
    site["/half.jpg"] = Resource(half(1), "image/jpeg")  # p1's picture, re-encoded
    site["/caf%C3%A9.png"] = Resource(png(9), "image/png")  # listed percent-encoded
    site["/text.txt"] = Resource(b"hello", "text/plain")
    site["/gone.png"] = Response(404, b"no")
    return site


def _lines(server_url: object, site: dict[str, object]) -> list[str]:
    urls = [server_url(p) for p in site]  # type: ignore[operator]
    # Repeats, a comment, malformed lines (one that urlsplit itself rejects), a bidi override.
    bidi = server_url("/\u202e.png")  # type: ignore[operator]
    return [*urls, "# c", urls[1], "ftp://h/x.png", "http://[bad", urls[3], bidi]


def test_reports_streamed_from_the_spool_equal_the_reports_of_kept_items(tmp_path: Path) -> None:
    site = _site()
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "old.png").write_bytes(png(4))  # p4.png is already here
    log = tmp_path / "sync.jsonl"
    with http_server(dict(site)) as server, Library(folder, workers=1) as lib:
        summary = lib.sync(_lines(server.url, site), concurrency=3, log=str(log))
    assert isinstance(summary.items, Spooled) and isinstance(summary.repeated, Spooled)
    kept = dataclasses.replace(
        summary, items=tuple(summary.items), repeated=tuple(summary.repeated)
    )
    assert len(kept.items) == summary.urls == 13 and len(kept.repeated) == 2
    assert [i.line for i in kept.items] == sorted(i.line for i in kept.items)
    assert {i.decision for i in kept.items} >= {
        "downloaded", "skipped-bytes", "skipped-same-picture", "failed",
    }  # fmt: skip
    # Every decision the --log file has (written as decided), in list order.
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [i.to_dict() for i in kept.items] == sorted(
        (d for d in logged if d["decision"] != "repeated"), key=lambda d: d["line"]
    )
    assert summary.items == kept.items and summary.repeated == kept.repeated
    assert summary.failures == tuple(i for i in kept.items if i.decision == "failed")

    # --json: streamed piece by piece == the whole dict's text.
    streamed = io.StringIO()
    write_json(summary.to_dict(lazy=True), streamed)
    assert streamed.getvalue() == json_text(kept.to_dict())
    # --csv and --verbose (and the text report): the same from the spool as from a tuple.
    for spooled_text, kept_text in (
        (_csv(summary), _csv(kept)),
        (format_sync(summary, verbose=True), format_sync(kept, verbose=True)),
        (format_sync(summary), format_sync(kept)),
        ("\n".join(sync_lines(summary)), format_sync(kept)),
    ):
        assert spooled_text == kept_text
    assert "http://[bad" in _csv(summary)
    # --html: items made a batch at a time from the spool == all at once from a tuple.
    out = tmp_path / "report.html"
    page = render(sync_report(summary, out))
    assert page == render(sync_report(kept, out))
    assert page.count("data:image/jpeg;base64,") == len(list(folder.glob("*.png"))) == 6


def _csv(summary: SyncSummary) -> str:
    out = io.StringIO()
    write_sync(summary, out)
    return out.getvalue()


def test_sync_command_streams_json_and_html_with_a_url_urlsplit_rejects(tmp_path: Path) -> None:
    site = _site()
    folder = tmp_path / "photos"
    folder.mkdir()
    urls = tmp_path / "urls.txt"
    with http_server(dict(site)) as server:
        urls.write_text("\n".join(_lines(server.url, site)) + "\n")
        report = tmp_path / "report.html"
        proc = run_cli("sync", str(urls), str(folder), "--json", "--html", str(report),
                       "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    # "http://[bad" made --html an internal error (ValueError from urlsplit in the link).
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.decode().startswith("error: 5 of 13 URLs failed"), proc.stderr
    assert proc.stderr.count(b"\n") == 1
    text = proc.stdout.decode()
    assert text == json_text(json.loads(text)) + "\n"  # what one json_text of it writes
    data = json.loads(text)
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert data["items"] == sorted(
        (d for d in logged if d["decision"] != "repeated"), key=lambda d: d["line"]
    )
    assert [r["first_line"] for r in data["repeated"]] == [2, 4]
    page = report.read_text()
    assert "http://[bad" in page and page.count("data:image/jpeg;base64,") == 6


def test_a_spooled_sequence_acts_as_the_tuple_it_replaces() -> None:
    spool = ItemSpool()
    lines = [5, 3, 9, *range(10, 1210)]  # out of order, and past a few 500-row batches
    for n, line in enumerate(lines):
        decision = "failed" if n % 7 == 0 else "downloaded"
        path = Path(f"/p/\udcff{n}.png") if n % 2 else None  # a name that is not UTF-8
        spool.add("items", line, (line, decision, path), decision=decision, path=path)
    spool.add("items", 9, (9, "second", None), decision="second")  # same line: arrival order
    view = spool.view("items")
    expected = [
        (line, "failed" if n % 7 == 0 else "downloaded",
         Path(f"/p/\udcff{n}.png") if n % 2 else None) for n, line in enumerate(lines)
    ]  # fmt: skip
    expected.append((9, "second", None))
    expected.sort(key=lambda t: t[0])  # stable: the second line 9 stays after the first
    assert len(view) == len(expected) == 1204
    assert list(view) == expected and view == tuple(expected) and view == expected
    assert view[0] == expected[0] and view[-1] == expected[-1] and view[600] == expected[600]
    assert view[10:13] == tuple(expected[10:13]) and view[::500] == tuple(expected[::500])
    with pytest.raises(IndexError):
        view[1204]
    failed = view.where("failed")
    assert list(failed) == [t for t in expected if t[1] == "failed"]
    assert view.decisions() == ["downloaded", "failed", "second"]
    assert sorted(view.distinct_paths()) == sorted(str(t[2]) for t in expected if t[2])
    assert spool.view("repeated") == () and Spooled.empty() == []
    spool.close()
