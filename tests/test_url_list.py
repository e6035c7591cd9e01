"""Issue 10 item 3 and issue 11 item 7: URL lists as users write them, and everything
untrusted a sync prints, escaped (the real ``samepix sync``, a real server on 127.0.0.1)."""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from samepix.sync import parse_url_list, split_lines
from samepix.terminal import escape, json_text

from .helpers import Response, encode, http_server, run_cli


@pytest.fixture(scope="module")
def png() -> bytes:
    rng = np.random.default_rng(11)
    return encode(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), "PNG")


def _sync(tmp_path: Path, text: str | bytes, *extra: str) -> tuple[int, str, str, Path]:
    urls = tmp_path / "urls.txt"
    urls.write_bytes(text.encode() if isinstance(text, str) else text)
    folder = tmp_path / "dir"
    folder.mkdir(exist_ok=True)
    proc = run_cli("sync", str(urls), str(folder), "--workers", "1", "--retries", "0", *extra)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode(), folder


# --- parsing -----------------------------------------------------------------------------------


def test_trailing_comment_is_ignored(tmp_path: Path, png: bytes) -> None:
    # As found: the README says comments are ignored, but "URL  # note" failed.
    with http_server({"/a.png": Response(200, png, {"Content-Type": "image/png"})}) as server:
        code, out, err, folder = _sync(tmp_path, f"{server.url('/a.png')}   # the cat\n")
    assert code == 0, (out, err)
    assert (folder / "a.png").read_bytes() == png


def test_fragment_is_not_a_comment() -> None:
    parsed = parse_url_list(["http://h/a.png#frag", "http://h/b.png #c", "# all comment"])
    assert [u for _, u in parsed.urls] == ["http://h/a.png#frag", "http://h/b.png"]


def test_byte_order_mark_is_skipped(tmp_path: Path, png: bytes) -> None:
    # As found: the BOM was reported as a control character in the first URL.
    with http_server({"/a.png": Response(200, png, {"Content-Type": "image/png"})}) as server:
        code, out, err, folder = _sync(tmp_path, b"\xef\xbb\xbf" + server.url("/a.png").encode())
    assert code == 0, (out, err)
    assert (folder / "a.png").exists()


def test_only_newlines_split_lines() -> None:
    # As found: U+2028 split lines, so line numbers ran past the end of the file.
    text = "http://h/a.png\nhttp://h/b\u2028c.png\r\nhttp://h/d.png\rhttp://h/e\x0cf.png\n"
    lines = split_lines(text)
    assert len(lines) == 4
    parsed = parse_url_list(lines)
    assert [n for n, _ in parsed.urls] == [1, 3]
    assert [(n, why) for n, _, why in parsed.malformed] == [
        (2, "contains white space"),
        (4, "contains white space"),
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("http://0177.0.0.1/a.png", "Invalid IPv4"),
        ("http://127.000.000.001/a.png", "Invalid IPv4"),
        ("http://ｅｘａｍｐｌｅ.com/a.png", "not a valid URL"),
        ("http://h/" + "a" * 100_000, "longer than"),
        ("ftp://h/a.png", "not an http(s) URL"),
    ],
    ids=["octal-host", "padded-host", "full-width-host", "100-KB-url", "ftp"],
)
def test_bad_urls_are_malformed_lines(line: str, why: str) -> None:
    parsed = parse_url_list([line])
    assert not parsed.urls
    [(number, _, reason)] = parsed.malformed
    assert number == 1 and why in reason, reason


def test_upper_case_scheme_is_a_url() -> None:
    assert [u for _, u in parse_url_list(["HTTP://h/a.png", "Https://h/b.png"]).urls]


# --- one bad URL never stops the others ---------------------------------------------------------


def test_bad_urls_and_redirects_are_failed_lines_and_the_rest_goes_on(
    tmp_path: Path, png: bytes
) -> None:
    # As found: each of these ended the whole sync with "internal error InvalidURL".
    routes = {
        "/a.png": Response(200, png, {"Content-Type": "image/png"}),
        "/to-data": Response(302, b"", {"Location": "data:image/png;base64,iVBORw0KGgo="}),
        "/to-js": Response(302, b"", {"Location": "javascript:alert(1)"}),
        "/to-octal": Response(302, b"", {"Location": "http://0177.0.0.1/x.png"}),
    }
    with http_server(routes) as server:
        lines = [
            server.url("/to-data"),
            "http://0177.0.0.1/a.png",
            "http://127.000.000.001/a.png",
            "http://ｅｘａｍｐｌｅ.com/a.png",
            "http://example.com/" + "a" * 100_000,
            server.url("/to-js"),
            server.url("/to-octal"),
            server.url("/a.png").replace("http://", "HTTP://"),
        ]
        code, out, err, folder = _sync(tmp_path, "\n".join(lines) + "\n")
    assert code == 2
    assert "internal error" not in err, err
    assert (folder / "a.png").read_bytes() == png
    failed = re.findall(r"^failed: .* \(line (\d+)\)$", out, re.M)
    assert failed == ["1", "2", "3", "4", "5", "6", "7"], out
    assert "synced 8 URLs" in out
    # Four malformed lines can never pass; three failed downloads may: both said.
    assert "run the sync again" in err and "fix the malformed lines" in err, err
    assert len(out) < 5000  # the 100 KB URL is shortened on the terminal (whole in --json)
    assert "redirected to a URL samepix cannot fetch" in out


def test_malformed_lines_only_do_not_say_run_again(tmp_path: Path) -> None:
    code, _, err, _ = _sync(tmp_path, "not a url\nftp://h/x.png\n")
    assert code == 2
    assert "run the sync again" not in err, err
    assert "fix the malformed lines in the list" in err


def test_progress_total_matches_the_summary(tmp_path: Path, png: bytes) -> None:
    # As found: the progress line said 6/6 while the summary said 15 URLs.
    with http_server({"/a.png": Response(200, png, {"Content-Type": "image/png"})}) as server:
        text = "bad one\nftp://x/y\n" + server.url("/a.png") + "\n" + server.url("/a.png") + "\n"
        _, out, err, _ = _sync(tmp_path, text, "--progress")
    totals = set(re.findall(r"syncing [\d,]+/(\d+)", err))
    assert totals == {"3"}, err
    assert "synced 3 URLs" in out


# --- escaping -----------------------------------------------------------------------------------


def test_escape_shows_control_and_bidi_characters() -> None:
    assert escape("plain é 写真.jpg") == "plain é 写真.jpg"
    assert escape("\x1b]0;owned\x07\x1b[2J") == "\\x1b]0;owned\\x07\\x1b[2J"
    assert escape("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape("\x9b31m \u202egpj.exe \u2028") == "\\x9b31m \\u202egpj.exe \\u2028"
    assert escape(b"caf\xe9.jpg".decode("utf-8", "surrogateescape")) == "caf\\xe9.jpg"


def test_json_text_is_printable_and_round_trips() -> None:
    import json
    import os

    name = b"caf\xe9\x1b.jpg".decode("utf-8", "surrogateescape")
    text = json_text({"path": name, "x": "\x9b\u202e"})
    assert text.isascii() or text.isprintable()
    text.encode("utf-8")  # printable on a UTF-8 stream: no lone surrogate left
    assert os.fsencode(json.loads(text)["path"]) == b"caf\xe9\x1b.jpg"


def test_untrusted_text_from_the_list_and_the_server_is_escaped(tmp_path: Path) -> None:
    # As found: a title-setting and a clear-screen sequence got through to the terminal.
    def evil(h: BaseHTTPRequestHandler) -> None:
        h.send_response(404, "Not Found \x1b]0;owned\x07\x1b[2J")
        h.send_header("Content-Length", "0")
        h.end_headers()

    def disposition(h: BaseHTTPRequestHandler) -> Response:
        return Response(
            200,
            b"<html>\x1b[2J</html>",
            {
                "Content-Type": "text/html",
                "Content-Disposition": 'attachment; filename="\x1b[2J.png"',
            },
        )

    with http_server({"/evil": evil, "/cd": disposition}) as server:
        text = "\n".join(
            ["http://h/\x1b]0;title\x07x.png", server.url("/evil"), server.url("/cd?\x1b[2J")]
        )
        code, out, err, _ = _sync(tmp_path, text + "\n", "--verbose")
    assert code == 2
    for stream in (out, err):
        assert "\x1b" not in stream and "\x07" not in stream, stream
    assert "\\x1b]0;title\\x07" in out
    assert "\\x1b]0;owned\\x07\\x1b[2J" in out


def test_invisible_characters_in_a_url_are_shown(tmp_path: Path) -> None:
    # As found: a zero-width no-break space (U+FEFF) inside a URL was printed as it is, so the
    # failed URL looked exactly like a good one on the terminal.
    code, out, err, _ = _sync(tmp_path, "http://exa\ufeffmple.invalid/\u200bcat.png\n")
    assert code != 0, (out, err)  # the URL failed
    text = out + err
    assert "\\ufeff" in text and "\\u200b" in text, text
    assert "\ufeff" not in text and "\u200b" not in text, text
