"""The ``samepix`` command. The only module that knows the CLI framework (argparse: no
dependency, fast start). Heavy modules are imported inside the commands, so ``samepix --help``
does not pay for numpy, OpenCV or httpx.

Exit status, like ``cmp``: 0 the same picture (identical/same, or found), 1 not (similar,
different, not found), 2 trouble (bad input, network, limits) with one line ``error: ...``.
``sync`` exits 0 when every URL was handled (downloaded or skipped) and 2 when some failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import SamepixError, UsageError
from .terminal import escape, escape_lines, json_text

__all__ = ["main"]

EXIT_MATCH, EXIT_NO_MATCH, EXIT_TROUBLE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

EXIT_STATUS_HELP = """\
exit status, by command:
  compare  0 identical or same, 1 similar or different
  find     0 found (identical or same), 1 not found
  dupes    0 duplicates found, 1 none; with an action (--move-to, --trash, --hardlink,
           --delete): 0 done, 1 some copies skipped or the deletion declined
  sync     0 every URL handled (saved, replaced or skipped), 2 some failed
  undo     0 all undone, 1 some actions could not be undone
  index, probe, demo   0 done
  every command: 2 trouble (bad input, network, limits; one 'error:' line on stderr),
                 130 interrupted (Ctrl-C; says what was done and what is left),
                 143 terminated (SIGTERM; the same clean stop)"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    # numpy's OpenBLAS starts a thread per core when numpy is imported: 60-190 ms of a one-shot
    # command's wall time on 2 cores (docs/benchmarks.md, start-up), while samepix's linear
    # algebra is a few 2x2/3x3 products. Worker processes inherit it. A user's value is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = _build_parser()
    _shell_completion(parser)
    try:
        _apply_settings(parser, argv)
    except SamepixError as exc:
        print(f"error: {escape(exc)}", file=sys.stderr)
        return EXIT_TROUBLE
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if debug:  # what decoders said (Pillow warnings, libtiff messages) goes to the samepix logger
        import logging

        handler_ = logging.StreamHandler(sys.stderr)
        handler_.setFormatter(logging.Formatter("debug: %(message)s"))
        logging.getLogger("samepix").addHandler(handler_)
        logging.getLogger("samepix").setLevel(logging.DEBUG)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_TROUBLE
    restore = _terminate_like_interrupt()
    try:
        return handler(args)
    except SamepixError as exc:
        if debug:
            raise
        print(f"error: {escape(exc)}", file=sys.stderr)  # it may quote a server or a file name
        return EXIT_TROUBLE
    except _Terminated:
        print("error: terminated", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports it
    except KeyboardInterrupt:
        print(f"error: interrupted{_INTERRUPTED_HINT.get(handler.__name__, '')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_TROUBLE
    except Exception as exc:  # a bug: one line unless --debug, which shows the traceback
        if debug:
            raise
        print(
            f"error: internal error {type(exc).__name__}: {escape(exc)} "
            "(run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_TROUBLE
    finally:
        restore()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT would be: the same clean stop (locks released, worker
    processes ended, finished work kept)."""


def _terminate_like_interrupt() -> Callable[[], None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers belong to the main thread

    def on_term(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, on_term)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _shell_completion(parser: argparse.ArgumentParser) -> None:
    """Tab completion through argcomplete when it is installed (``pip install samepix[completion]``,
    then ``eval "$(register-python-argcomplete samepix)"``); it returns at once otherwise."""
    import os

    if "_ARGCOMPLETE" not in os.environ:  # not a completion request: no import, no cost
        return
    try:
        import argcomplete  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def _apply_settings(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Defaults from SAMEPIX_* variables and the config file (samepix.settings) for the
    command about to run; the command line still wins."""
    words = list(sys.argv[1:] if argv is None else argv)
    subparsers = next(
        (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
    )
    if subparsers is None:
        return
    command = next((w for w in words if w in subparsers.choices), None)
    if command is None:
        return
    from .settings import load_defaults

    sub = subparsers.choices[command]
    actions = {a.dest: a for a in sub._actions if a.option_strings}
    defaults = {}
    for name, (text, where) in load_defaults(command, set(actions)).items():
        action = actions[name]
        if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
            defaults[name] = _parse_like(True, text, where)
        else:
            kind = action.type if callable(action.type) else str
            try:
                defaults[name] = kind(text)
            except (TypeError, ValueError):
                raise UsageError(f"{where}: {text!r} is not a valid value for --{name}") from None
    if defaults:
        sub.set_defaults(**defaults)


# What Ctrl-C leaves behind, by command (sync says more: see _cmd_sync).
_INTERRUPTED_HINT = {
    "_cmd_index": "; files indexed so far are kept: run it again to continue",
    "_cmd_find": "; nothing was written but the index, which keeps what it had indexed",
    "_cmd_dupes": "; the index keeps what it had indexed; file actions done so far are in "
    "DIR/.samepix/actions.jsonl (samepix undo DIR reverts moves, trash and hard links)",
}


# ---------------------------------------------------------------------------------------------
# Parser


def _build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument("--debug", action="store_true", help="show tracebacks and decoder messages")
    # The same option after the command name; SUPPRESS so it does not reset a --debug given
    # before the command (argparse would set the subcommand's default False over it).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and decoder messages",
    )

    parser = argparse.ArgumentParser(
        prog="samepix",
        description="Is the image at this URL already on my disk? Explained image-sameness "
        "verdicts: identical / same / similar / different.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[top],
    )
    parser.add_argument("--version", action="version", version=f"samepix {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="compare two images (paths or URLs) and explain the verdict",
        description="Compare two images: verdict, reasons, metrics. Exit 0 if identical/same.",
    )
    p.add_argument("a", help="path, http(s)://, file:// or data: URL, or - for stdin")
    p.add_argument("b", help="path or URL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--diff",
        metavar="FILE",
        help="write a heatmap of where the images differ, in the format its extension names "
        "(.png, .jpg, .webp, .bmp, .tif, .gif): no tint where the loss is what a change of "
        "the whole picture explains, yellow to orange for more loss within 'same', red where "
        "the verdict sees a local edit; a legend below says so with this pair's numbers",
    )
    _add_html_option(p)
    _add_policy_options(p)
    _add_limit_options(p)
    _add_fetch_options(p, state=True)
    p.set_defaults(handler=_cmd_compare)

    _add_folder_commands(sub, common)

    p = sub.add_parser(
        "probe",
        parents=[common],
        help="format, size and pixel dimensions of an image (URL or file) from its first bytes",
        description="Read only the first bytes of an image (for a URL a Range request, or a "
        "streamed GET stopped early; for a file its header) and report its format, width, "
        "height and size in bytes.",
    )
    p.add_argument("url", metavar="SOURCE", help="http(s):// URL, a path or a file:// URL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_limit_options(p)
    _add_fetch_options(p, state=False)
    p.set_defaults(handler=_cmd_probe)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="serve sample images on 127.0.0.1 and show what samepix decides",
        description="A self-contained demo: makes sample pictures, serves them from a local "
        "HTTP server and compares each URL with a local folder. Needs no outside network.",
    )
    p.add_argument("--dir", metavar="DIR", help="keep the demo folder here (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(handler=_cmd_demo)
    return parser


def _add_folder_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``index``, ``find`` and ``dupes``: the commands that work on a folder and its index."""
    p = sub.add_parser(
        "index",
        parents=[common],
        help="build or update the index of every image under a folder",
        description="Build or update DIR's index (default DIR/.samepix/index.db): new and "
        "changed files are hashed, moved files recognised by content, deleted ones pruned.",
    )
    p.add_argument("dir", metavar="DIR", help="the folder (searched recursively)")
    p.add_argument("--rebuild", action="store_true", help="delete the index and start over")
    _add_index_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    _add_limit_options(p)
    p.set_defaults(handler=_cmd_index)

    p = sub.add_parser(
        "find",
        parents=[common],
        help="is this picture (path or URL) already in a folder?",
        description="Look for the picture of SOURCE in DIR: candidates from the index by hash "
        "distance, each confirmed by a full comparison. Exit 0 found, 1 not found, 2 error.",
    )
    p.add_argument("source", metavar="SOURCE", help="path, http(s)://, file:// or data: URL, or -")
    p.add_argument("--in", dest="dir", metavar="DIR", required=True, help="the folder to search")
    p.add_argument(
        "--no-update", action="store_true", help="use the index as it is, without a rescan"
    )
    p.add_argument("--first", action="store_true", help="stop at the first matching file")
    _add_index_options(p)
    _add_output_options(p, "print one JSON object", "one row per match and per similar file")
    _add_html_option(p)
    _add_policy_options(p)
    _add_limit_options(p)
    _add_fetch_options(p, state=False)
    p.set_defaults(handler=_cmd_find)

    p = sub.add_parser(
        "sync",
        parents=[common],
        help="download into a folder only the pictures it does not have yet",
        description="For each URL of URLS (a file, or - for stdin; one URL a line, # comments): "
        "skip it when the server says it is unchanged (304), when its bytes or its picture are "
        "already in DIR; else save it into DIR. Exit 0 when every URL was handled, 2 when some "
        "failed (or on trouble). See docs/library.md.",
    )
    p.add_argument("urls", metavar="URLS", help="file of URLs, one a line, or - for stdin")
    p.add_argument(
        "dir",
        metavar="DIR",
        help="the folder to sync into: a local folder, or s3://bucket/prefix (objects written "
        "whole, one sync at a time through a lock object in the bucket; see docs/scale.md)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="decide and report, write nothing into DIR"
    )
    p.add_argument(
        "--replace-better",
        action="store_true",
        help="replace a local copy by a better one of the same picture (more pixels, lossless, "
        "higher JPEG quality, larger file); the old file is kept under DIR/.samepix/replaced/",
    )
    p.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="downloads at once (16)"
    )
    p.add_argument(
        "--per-host", type=int, default=6, metavar="N", help="downloads at once per host (6)"
    )
    p.add_argument("--log", metavar="PATH", help="append one JSON line per decision to PATH")
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="S",
        help="wait up to S seconds for another sync into DIR to finish (default: refuse at once)",
    )
    _add_html_option(p)
    p.add_argument("--keep-in", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print a line for every URL, not only failures"
    )
    _add_index_options(p)
    _add_output_options(p, "print the summary as one JSON object", "one row per URL decided")
    _add_policy_options(p)
    _add_limit_options(p)
    _add_fetch_options(p, state=False)
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="neither send nor remember ETag/Last-Modified (DIR/.samepix/fetch-state.sqlite3; "
        "for a bucket, beside its local index): download every URL",
    )
    p.set_defaults(handler=_cmd_sync)

    p = sub.add_parser(
        "dupes",
        parents=[common],
        help="group copies of the same picture within a folder (changes nothing unless "
        "asked: --move-to, --trash, --hardlink, --delete)",
        description="Groups of files in DIR that show the same picture, best copy first "
        "(largest resolution, then lossless, higher JPEG quality, larger file). "
        "Exit 0 when there are duplicates, 1 when none.",
    )
    p.add_argument("dir", metavar="DIR", help="the folder")
    p.add_argument(
        "--no-update", action="store_true", help="use the index as it is, without a rescan"
    )
    _add_index_options(p)
    _add_output_options(p, "print one JSON object", "one row per copy")
    _add_html_option(p)
    _add_action_options(p)
    _add_policy_options(p)
    _add_limit_options(p)
    p.set_defaults(handler=_cmd_dupes)

    p = sub.add_parser(
        "undo",
        parents=[common],
        help="undo an action run of dupes (moves, trash, hard links)",
        description="Restore what a 'dupes --move-to/--trash/--hardlink' run did, from the "
        "journal DIR/.samepix/actions.jsonl. Deletions cannot be undone. See docs/report.md.",
    )
    p.add_argument("dir", metavar="DIR", help="the folder the action ran on")
    p.add_argument(
        "action_id",
        metavar="ACTION_ID",
        nargs="?",
        help="a run or action id (default: the last run)",
    )
    p.set_defaults(handler=_cmd_undo)


def _add_html_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--html",
        metavar="PATH",
        help="also write a report to look at: one self-contained HTML file (docs/report.md)",
    )


def _add_action_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("acting on the extra copies (see docs/report.md; undo: samepix undo)")
    what = g.add_mutually_exclusive_group()
    what.add_argument("--move-to", metavar="DEST", help="move them under DEST (outside DIR)")
    what.add_argument("--trash", action="store_true", help="move them to the trash (freedesktop)")
    what.add_argument(
        "--hardlink", action="store_true", help="replace identical copies by hard links"
    )
    what.add_argument("--delete", action="store_true", help="delete them (cannot be undone)")
    g.add_argument(
        "--keep-in",
        action="append",
        default=[],
        metavar="REF",
        help="keep every copy under REF and act only on the others (repeatable)",
    )
    g.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    g.add_argument("--yes", action="store_true", help="--delete without asking")
    g.add_argument(
        "--not-same",
        nargs=2,
        metavar=("A", "B"),
        help="record that files A and B are not the same picture (kept in the index; later "
        "dupes and find respect it), then stop",
    )


def _add_output_options(p: argparse.ArgumentParser, json_help: str, csv_rows: str) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help=json_help)
    out.add_argument("--csv", action="store_true", help=f"print CSV with a header: {csv_rows}")


def _add_index_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("index")
    g.add_argument("--db", metavar="PATH", help="index database (default DIR/.samepix/index.db)")
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that decode and compare (default: one per CPU)",
    )
    g.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the heavy work on a Dask cluster (decoding; sync's downloads; dupes' pair "
        "comparisons): tcp://HOST:PORT of a running scheduler, or local:N to start N worker "
        "processes here (needs samepix[dask]; see docs/scale.md)",
    )
    g.add_argument(
        "--follow-links",
        action="store_true",
        help="follow symbolic links that lead out of DIR too (default: not followed, counted "
        "in the summary; links within DIR are always followed, loops never)",
    )
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )


def _add_policy_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("verdict thresholds (see docs/verdicts.md)")
    g.add_argument("--min-ssim", type=float, metavar="X", help="lowest luma SSIM for 'same'")
    g.add_argument(
        "--min-worst-region", type=float, metavar="X", help="lowest worst-tile SSIM for 'same'"
    )
    g.add_argument(
        "--max-colour-shift", type=float, metavar="DE", help="largest mean ΔE for 'same'"
    )
    # What "the same picture" means is a policy choice (docs/verdicts.md); each is off by default.
    # find and sync look for mirror images, rotations and crops whatever these say when nothing
    # matched as it stands (reported as 'similar' when off); with a flag, find also reports such
    # copies beside the ones as they stand (docs/library.md#find).
    for flag, what, how in (
        ("--greyscale-is-same", "a greyscale copy of a colour picture", ""),
        (
            "--flip-is-same",
            "a mirror image (left-right, top-bottom or diagonal)",
            "; find/sync look up the query's four mirror images (find: also beside copies as "
            "they stand), dupes compares files whose thumbnails look mirrored",
        ),
        (
            "--rotation-is-same",
            "a copy turned by 90°, 180° or 270° in its pixels",
            "; find/sync look up the query's three rotations (find: also beside copies as they "
            "stand), dupes compares files whose thumbnails look turned",
        ),
        (
            "--crop-is-same",
            "a crop showing at least Policy.min_crop_area (half) of the larger image",
            "; find/sync also look up the crop hashes the index keeps of every file, so a query "
            "that is a crop keeping at least 70 %% of each side of a folder file is found "
            "(98 %% of random such crops in benchmarks/crop_recall.py; find: also beside copies "
            "as they stand); dupes compares each file with the files it may be a crop of",
        ),
    ):
        g.add_argument(flag, action="store_true", help=f"count {what} as 'same'{how}")
    g.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set any Policy field, e.g. --policy similar_ssim=0.4 (repeatable)",
    )


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits")
    g.add_argument("--max-pixels", type=int, metavar="N", help="refuse images above N pixels")
    g.add_argument(
        "--max-bytes", type=int, metavar="N", help="refuse files/downloads above N bytes"
    )
    g.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds one download may take in all: connecting, headers, body, redirects and "
        "retries (default 120; a connection or a silent read gives up sooner: 10 s, 30 s)",
    )
    g.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="refuse images whose decode or comparison would need more memory, judged from "
        "their headers (e.g. 4G, 512M; default 2G)",
    )


def _add_fetch_options(p: argparse.ArgumentParser, *, state: bool) -> None:
    g = p.add_argument_group("fetching (see docs/fetching.md)")
    g.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help="tries after a connection error, 5xx or 429 (default 2)",
    )
    g.add_argument(
        "--no-private",
        action="store_true",
        help="refuse loopback, private, link-local and other non-public addresses (checked "
        "on every redirect) and file:// URLs",
    )
    if state:
        where = g.add_mutually_exclusive_group()
        where.add_argument(
            "--state",
            metavar="PATH",
            help="the state file remembering ETag/Last-Modified and results "
            "(default: fetch-state.sqlite3 in the user cache directory)",
        )
        where.add_argument(
            "--no-cache",
            action="store_true",
            help="neither read nor write the state file: download everything",
        )


def _downloads_any(args: argparse.Namespace, *sources: str) -> bool:
    """Whether a Fetcher is needed: a source is an http(s) URL, or ``--no-private`` must refuse
    a ``file://`` one. The fetching options are checked either way."""
    _check_fetch_args(args)
    if getattr(args, "no_private", False):
        return True
    from .sources import is_http_url

    return any(is_http_url(s) for s in sources)


def _check_fetch_args(args: argparse.Namespace) -> None:
    retries = getattr(args, "retries", None)
    if retries is not None and retries < 0:
        raise UsageError(f"--retries must be >= 0, got {retries}")


def fetcher_from_args(args: argparse.Namespace, limits: Any) -> Any:
    """The Fetcher for the fetching options (shared by every command that downloads)."""
    from .fetch import DEFAULT_RETRY, Fetcher, Retry
    from .state import FetchState

    _check_fetch_args(args)
    retries = getattr(args, "retries", None)
    retry = DEFAULT_RETRY if retries is None else Retry(tries=retries + 1)
    state = None
    if hasattr(args, "no_cache") and not args.no_cache:
        state = FetchState(args.state or FetchState.default_path())
    return Fetcher(
        limits=limits,
        retry=retry,
        allow_private=not getattr(args, "no_private", False),
        state=state,
    )


def policy_from_args(args: argparse.Namespace) -> Any:
    """Build the Policy from the threshold options (shared by every command that decides)."""
    from .policy import DEFAULT_POLICY, Policy

    changes: dict[str, Any] = {}
    for name in ("min_ssim", "min_worst_region", "max_colour_shift"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    for switch in ("greyscale_is_same", "flip_is_same", "rotation_is_same", "crop_is_same"):
        if getattr(args, switch, False):
            changes[switch] = True
    defaults = DEFAULT_POLICY.as_dict()
    for item in getattr(args, "policy", []) or []:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in defaults:
            raise UsageError(
                f"--policy {item!r}: expected NAME=VALUE with NAME one of {', '.join(defaults)}"
            )
        changes[name] = _parse_like(defaults[name], text.strip(), f"--policy {name}")
    policy: Policy = DEFAULT_POLICY.with_(**changes) if changes else DEFAULT_POLICY
    return policy


def _parse_like(example: Any, text: str, what: str) -> Any:
    try:
        if isinstance(example, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return type(example)(text)
    except ValueError as exc:
        raise UsageError(f"{what}: {text!r} is not a valid {type(example).__name__}") from exc


def limits_from_args(args: argparse.Namespace) -> Any:
    from .limits import DEFAULT_LIMITS, Limits, parse_size

    changes: dict[str, Any] = {}
    if getattr(args, "max_pixels", None) is not None:
        changes["max_pixels"] = args.max_pixels
    if getattr(args, "max_bytes", None) is not None:
        changes["max_bytes"] = args.max_bytes
    if getattr(args, "max_memory", None) is not None:
        changes["max_memory"] = parse_size(args.max_memory, "--max-memory")
    if getattr(args, "timeout", None) is not None:
        # The whole exchange (connect, headers, body, redirects, retries) fits in --timeout.
        changes["total_timeout"] = args.timeout
        changes["read_timeout"] = min(args.timeout, DEFAULT_LIMITS.read_timeout)
        changes["connect_timeout"] = min(args.timeout, DEFAULT_LIMITS.connect_timeout)
    if not changes:
        return DEFAULT_LIMITS
    limits: Limits = Limits(**{**DEFAULT_LIMITS.__dict__, **changes})
    return limits


# ---------------------------------------------------------------------------------------------
# Commands


def _cmd_compare(args: argparse.Namespace) -> int:
    # Imported before the comparison ladder (numpy and OpenCV only), so that OpenCV's one-time
    # Lab tables build while the rest is imported and the files are read.
    from .colour import lab_tables_ready, warm_lab_tables

    warm_lab_tables()
    try:
        return _compare_command(args)
    finally:
        lab_tables_ready()  # no thread may be left inside OpenCV when the process exits


def _compare_command(args: argparse.Namespace) -> int:
    from .compare import compare, load
    from .heatmap import heatmap_format, write_heatmap
    from .report import format_comparison

    policy = policy_from_args(args)
    limits = limits_from_args(args)
    if args.diff:
        heatmap_format(args.diff)  # an unknown extension is a usage error, before any work
    heat_error: SamepixError | None = None
    # Two local files need no HTTP client (importing it is a third of a one-shot compare).
    fetching = _downloads_any(args, args.a, args.b)
    with fetcher_from_args(args, limits) if fetching else contextlib.nullcontext() as fetcher:
        if args.diff or args.html:  # the heatmap is drawn over the images: keep them at hand
            a = load(args.a, limits=limits, lazy=True, fetcher=fetcher)
            b = load(args.b, limits=limits, lazy=True, fetcher=fetcher)
            result = compare(a, b, policy=policy, limits=limits, keep_map=True, fetcher=fetcher)
            if args.diff:
                base = a if _area(result.a) <= _area(result.b) else b
                try:
                    write_heatmap(result, base, args.diff, policy=policy)
                except SamepixError as exc:  # the verdict stands; the failure is told after it
                    heat_error = exc
            if args.html:
                from .html_report import compare_report, write_report

                write_report(compare_report(result, a, b, args.html), args.html)
        else:  # sources passed as given, so an unchanged URL can be revalidated, not read
            result = compare(args.a, args.b, policy=policy, limits=limits, fetcher=fetcher)
    if args.json:
        out = result.to_dict()
        if args.diff and heat_error is None:
            out["diff"] = args.diff
        print(json_text(out))
    else:
        print(format_comparison(result))
        if args.diff and heat_error is None:
            print(f"  heatmap written to {escape(args.diff)}")
        if args.html:
            print(f"  report written to {escape(args.html)}")
    if heat_error is not None:
        sys.stdout.flush()
        if getattr(args, "debug", False):
            raise heat_error
        print(f"error: {escape(heat_error)}", file=sys.stderr)
        return EXIT_TROUBLE
    return EXIT_MATCH if result.is_match else EXIT_NO_MATCH


def _area(info: Any) -> int:
    return int(info.width) * int(info.height)


def _cmd_probe(args: argparse.Namespace) -> int:
    from .report import human_bytes
    from .sources import is_http_url

    limits = limits_from_args(args)
    if not is_http_url(args.url):  # a local file (or file:// URL)
        from .probe import probe_file

        path = args.url
        if path.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            path = unquote(urlsplit(path).path)
        local = probe_file(path, limits=limits)
        if args.json:
            print(json_text(local.to_dict()))
        else:
            shown = f"{local.width}×{local.height}, {human_bytes(local.size)}"
            print(f"{local.format} {shown}: {escape(path)}")
            print(f"  read {human_bytes(local.read)} of the file")
        return EXIT_MATCH
    with fetcher_from_args(args, limits) as fetcher:
        found = fetcher.probe(args.url)
    if args.json:
        print(json_text(found.to_dict()))
        return EXIT_MATCH
    dims = "size unknown" if found.width is None else f"{found.width}×{found.height}"
    total = "unknown size" if found.size is None else human_bytes(found.size)
    how = "a Range request" if found.ranged else "a GET stopped early"
    print(f"{escape(found.format)} {dims}, {total}: {escape(found.final_url)}")
    print(f"  read {human_bytes(found.transferred)} with {how}")
    return EXIT_MATCH


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(folder=args.dir, as_json=args.json)


# ---------------------------------------------------------------------------------------------
# Folder commands


def _library(args: argparse.Namespace, *, with_policy: bool) -> tuple[Any, Any]:
    """The Library the options describe, and its progress line (or None)."""
    from .library import Library
    from .progress import ProgressLine

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    line = ProgressLine(sys.stderr) if show else None
    lib = Library(
        args.dir,
        db=args.db,
        policy=policy_from_args(args) if with_policy else _default_policy(),
        limits=limits_from_args(args),
        workers=args.workers,
        progress=line,
        executor=args.dask,
        follow_links=args.follow_links,
    )
    if args.dask:
        lib.executor  # noqa: B018 - connect now: an unreachable scheduler fails before any work
    return lib, line


def _default_policy() -> Any:
    from .policy import DEFAULT_POLICY

    return DEFAULT_POLICY


def _cmd_index(args: argparse.Namespace) -> int:
    from .report import format_index_summary

    lib, line = _library(args, with_policy=False)
    try:
        summary = lib.rebuild() if args.rebuild else lib.update()
    finally:
        if line is not None:
            line.close()
        lib.close()
    if args.json:
        print(json_text(summary.to_dict()))
    else:
        print(format_index_summary(summary))
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    from .report import format_find

    lib, line = _library(args, with_policy=True)
    try:
        with fetcher_from_args(args, lib.limits) as fetcher:
            source: Any = args.source
            if args.html:  # the report shows the query: read it once, here
                from .compare import load

                source = load(args.source, limits=lib.limits, lazy=True, fetcher=fetcher)
            result = lib.find(source, update=not args.no_update, first=args.first, fetcher=fetcher)
            if args.html:
                from .html_report import find_report, write_report

                write_report(find_report(result, source, args.dir, args.html), args.html)
    finally:
        if line is not None:
            line.close()
        lib.close()
    if args.json:
        print(json_text(result.to_dict()))
    elif args.csv:
        from .csvout import write_find

        write_find(result, sys.stdout)
    else:
        print(format_find(result))
    return EXIT_MATCH if result.found else EXIT_NO_MATCH


def _cmd_dupes(args: argparse.Namespace) -> int:
    from .report import duplicate_totals, format_duplicates

    op = _action_op(args)
    lib, line = _library(args, with_policy=True)
    try:
        if args.not_same:
            return _not_same(args, lib)
        groups = lib.duplicates(update=not args.no_update)
    finally:
        if line is not None:
            line.close()
        lib.close()
    if args.html:  # before any action, so the report shows what was found
        from .html_report import dupes_report, write_report

        write_report(dupes_report(groups, args.dir, args.html), args.html)
    if op is not None:
        return _act(args, op, groups)
    if args.json:
        totals = duplicate_totals(groups)
        print(json_text({"groups": [g.to_dict() for g in groups], "totals": totals}))
    elif args.csv:
        from .csvout import write_dupes

        write_dupes(groups, sys.stdout)
    else:
        print(format_duplicates(groups))
    return EXIT_MATCH if groups else EXIT_NO_MATCH


def _not_same(args: argparse.Namespace, lib: Any) -> int:
    """``dupes DIR --not-same A B``: record the pair in DIR's index."""
    from pathlib import Path

    from .notsame import record_not_same

    if not args.no_update:
        lib.update()
    root = Path(args.dir).resolve()
    entries = []
    for name in args.not_same:
        path = Path(name) if Path(name).exists() else Path(args.dir) / name
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            raise UsageError(f"--not-same {name}: not inside {args.dir}") from None
        entry = lib.index.get(rel)
        if entry is None:
            raise UsageError(f"--not-same {name}: not an indexed image of {args.dir}")
        entries.append(entry)
    record_not_same(lib.index, entries[0], entries[1])
    a, b = args.not_same
    print(
        f"recorded: {escape(a)} and {escape(b)} are not the same picture; "
        "dupes and find keep them apart"
    )
    return 0


def _action_op(args: argparse.Namespace) -> str | None:
    for flag, op in (("move_to", "move"), ("trash", "trash"), ("hardlink", "hardlink")):
        if getattr(args, flag):
            return op
    if args.delete:
        return "delete"
    if args.keep_in or args.yes:
        raise UsageError("--keep-in and --yes go with --move-to, --trash, --hardlink or --delete")
    if args.dry_run:
        raise UsageError("--dry-run goes with --move-to, --trash, --hardlink or --delete")
    return None


def _act(args: argparse.Namespace, op: str, groups: Any) -> int:
    from .actions import apply_plan, format_plan, format_run, make_plan

    plan = make_plan(groups, op, args.dir, keep_in=args.keep_in, move_to=args.move_to)
    if args.dry_run:
        print(escape_lines(format_plan(plan)))
        return 0
    if op == "delete" and plan.steps and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "--delete cannot be undone: add --yes to confirm when not on a terminal"
            )
        print(escape_lines(format_plan(plan).replace("would delete", "will delete")))
        answer = input(f"delete {len(plan.steps)} file(s) for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_NO_MATCH
    run = apply_plan(plan)
    print(escape_lines(format_run(run, args.dir)))
    return 0 if not run.skipped else EXIT_NO_MATCH


def _cmd_undo(args: argparse.Namespace) -> int:
    from .actions import format_undo, undo

    result = undo(args.dir, args.action_id)
    print(escape_lines(format_undo(result)))
    return 0 if not result.failed else EXIT_NO_MATCH


def _cmd_sync(args: argparse.Namespace) -> int:
    from .fetch import DEFAULT_RETRY, Retry
    from .report import sync_lines
    from .sync import SyncInterrupted, read_url_file

    if args.retries is not None and args.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {args.retries}")
    if args.keep_in:
        raise UsageError(
            "sync has no --keep-in: it never moves or removes a local file, so every local copy "
            "is kept already (--keep-in is for dupes' actions)"
        )
    if not 0 <= args.wait <= 86_400:
        raise UsageError(f"--wait must be 0 to 86400 seconds, got {args.wait:g}")
    for option, value in (("--concurrency", args.concurrency), ("--per-host", args.per_host)):
        if value < 1:
            raise UsageError(f"{option} must be at least 1, got {value}")
    if args.dir.lower().startswith("memory://"):  # a store that would end with this command
        from .bucket_sync import refuse_from_a_command

        refuse_from_a_command(args.dir)
    lines = read_url_file(args.urls)
    lib, line = _library(args, with_policy=True)
    interrupted: SyncInterrupted | None = None
    try:
        summary = lib.sync(
            lines,
            dry_run=args.dry_run,
            replace_better=args.replace_better,
            concurrency=args.concurrency,
            per_host=args.per_host,
            log=args.log,
            retry=DEFAULT_RETRY if args.retries is None else Retry(tries=args.retries + 1),
            allow_private=not args.no_private,
            cache=not args.no_cache,
            # The text report lists only failures: a list of millions keeps no item per URL.
            keep_items=bool(args.json or args.csv or args.html or args.verbose),
            wait=args.wait,
        )
    except SyncInterrupted as exc:
        interrupted, summary = exc, exc.summary
    finally:
        if line is not None:
            line.close()
        lib.close()
    if args.html:
        from .html_report import sync_report, write_report

        write_report(sync_report(summary, args.html), args.html)
    # Every report is written as it is read from the summary's spool (samepix.sync_items):
    # no report of a list of millions is built in memory.
    if args.json:
        from .json_stream import write_json

        out = summary.to_dict(lazy=True)
        if interrupted is not None:
            out["interrupted"], out["left"] = True, interrupted.left
        write_json(out, sys.stdout)
        sys.stdout.write("\n")
    elif args.csv:
        from .csvout import write_sync

        write_sync(summary, sys.stdout)
    else:
        for text in sync_lines(summary, verbose=args.verbose):
            print(text)
    if interrupted is not None:
        s = summary
        terminated = isinstance(interrupted.__cause__, _Terminated)  # SIGTERM, not Ctrl-C
        print(
            f"error: {'terminated' if terminated else 'interrupted'} after {s.urls} of "
            f"{s.urls + interrupted.left} URLs "
            f"(downloaded {s.downloaded}, replaced {s.replaced}, skipped "
            f"{s.skipped_unchanged + s.skipped_bytes + s.skipped_same_picture}, failed "
            f"{s.failed}); {interrupted.left} left undecided, nothing partial written: run the "
            "same command again to continue",
            file=sys.stderr,
        )
        return 143 if terminated else EXIT_INTERRUPTED
    if not summary.ok:
        # Every other URL was handled; the exit status says that some were not.
        malformed = sum(1 for i in summary.failures if not i.retryable)
        advice = []
        if summary.failed > malformed:
            advice.append("run the sync again to retry them")
        if malformed:
            advice.append(f"fix the malformed line{'s' if malformed != 1 else ''} in the list")
        print(
            f"error: {summary.failed} of {summary.urls} URLs failed (listed above); "
            + " and ".join(advice),
            file=sys.stderr,
        )
        return EXIT_TROUBLE
    return 0
