"""Untrusted text on a terminal: escaped, so it can only ever be read, never obeyed.

A URL list, a server (its reason phrase, ``Content-Disposition``, redirects), an error message
quoting either, or a file name can hold control bytes and escape sequences: printed raw they
set the window title, clear the screen, move the cursor, or hide a line. Every such text that
samepix prints for a person goes through :func:`escape` first; JSON output is escaped by the
JSON encoder instead (see :func:`json_text`).

What is escaped, and how (in the style of Python's ``repr`` and ``ls --quoting-style=escape``):

- C0 and C1 control characters and DEL: ``\\x1b``, ``\\n``, ``\\r``, ``\\t``, ``\\x9b``;
- line and paragraph separators (U+2028, U+2029) and the bidirectional-override characters
  that reorder what a reader sees ("Trojan Source"): ``\\u2028``, ``\\u202e``;
- invisible characters that make two different texts look alike (zero-width space U+200B, word
  joiner and invisible operators U+2060–U+2064, the zero-width no-break space U+FEFF):
  ``\\ufeff``. The zero-width (non-)joiners U+200C/U+200D stay: scripts and emoji need them;
- bytes of a file name that are not valid UTF-8 (Python holds them as lone surrogates,
  ``os.fsdecode``'s *surrogateescape*): ``\\xff``, the byte itself.

Everything else, every printable character of every script, is shown as it is. A backslash is
not doubled: this output is for people; scripts read ``--json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["escape", "escape_lines", "json_text", "shorten"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidi embedding/override/isolate marks and the implicit marks (LRM, RLM, ALM).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Invisible characters that make two different texts look alike.
_INVISIBLE = "\u200b\u2060-\u2064\ufeff"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}{_INVISIBLE}\ud800-\udfff]")
# What json.dumps(ensure_ascii=False) leaves raw but a terminal may act on (or cannot print).
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f\u2028\u2029{_BIDI}\ud800-\udfff]")


def _one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte, as a byte
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def escape(text: object) -> str:
    """``text`` (any object, as ``str()``) with every character that could act on a terminal
    written as a visible escape; printable text is returned unchanged."""
    value = str(text)
    if value.isprintable():  # the common case: nothing to do (and no regex run)
        return value
    return _UNSAFE.sub(_one, value)


def escape_lines(text: str) -> str:
    """:func:`escape` for a block of lines made elsewhere: each line escaped, the line breaks
    kept (a name holding a newline breaks its line, but can no longer act on the terminal)."""
    return "\n".join(escape(line) for line in text.split("\n"))


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to about ``limit`` characters, saying how long it was (a 100 KB URL in a
    list stays one readable line; ``--json`` and ``--log`` keep it whole)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(obj: Any, *, separators: tuple[str, str] | None = None) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` that can always be printed.

    C0 control characters are escaped by the encoder already; DEL, C1 controls, line
    separators and bidi overrides are written as ``\\uXXXX`` escapes too. A lone surrogate (a
    byte of a file name that is not UTF-8) would make printing fail, so it is written as a JSON
    ``\\udcXX`` escape: Python's ``json.loads`` gives back the same string, and ``os.fsencode``
    of it the original bytes.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=separators)
    return _JSON_UNSAFE.sub(_json_escape, text)
