"""The ``samepix`` command. The only module that knows the CLI framework (argparse: no
dependency, fast start). Heavy modules are imported inside the commands, so ``samepix --help``
does not pay for numpy, OpenCV or httpx.

Exit status, like ``cmp``: 0 the same picture (identical/same, or found), 1 not (similar,
different, not found), 2 trouble (bad input, network, limits) with one line ``error: ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import SamepixError, UsageError

__all__ = ["main"]

EXIT_MATCH, EXIT_NO_MATCH, EXIT_TROUBLE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_TROUBLE
    try:
        return handler(args)
    except SamepixError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TROUBLE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_TROUBLE
    except Exception as exc:  # a bug: one line unless --debug, which shows the traceback
        if debug:
            raise
        print(
            f"error: internal error {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_TROUBLE


# ---------------------------------------------------------------------------------------------
# Parser


def _build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    parser = argparse.ArgumentParser(
        prog="samepix",
        description="Is the image at this URL already on my disk? Explained image-sameness "
        "verdicts: identical / same / similar / different.",
        epilog="Exit status: 0 same picture, 1 not the same, 2 error.",
        parents=[common],
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
    p.add_argument("--diff", metavar="PNG", help="write a heatmap of where the images differ")
    _add_policy_options(p)
    _add_limit_options(p)
    p.set_defaults(handler=_cmd_compare)

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


def _add_policy_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("verdict thresholds (see docs/verdicts.md)")
    g.add_argument("--min-ssim", type=float, metavar="X", help="lowest luma SSIM for 'same'")
    g.add_argument(
        "--min-worst-region", type=float, metavar="X", help="lowest worst-tile SSIM for 'same'"
    )
    g.add_argument(
        "--max-colour-shift", type=float, metavar="DE", help="largest mean ΔE for 'same'"
    )
    g.add_argument(
        "--greyscale-is-same",
        action="store_true",
        help="count a greyscale copy of a colour picture as 'same'",
    )
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
    g.add_argument("--timeout", type=float, metavar="S", help="network read timeout in seconds")


def policy_from_args(args: argparse.Namespace) -> Any:
    """Build the Policy from the threshold options (shared by every command that decides)."""
    from .policy import DEFAULT_POLICY, Policy

    changes: dict[str, Any] = {}
    for name in ("min_ssim", "min_worst_region", "max_colour_shift"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "greyscale_is_same", False):
        changes["greyscale_is_same"] = True
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
    from .limits import DEFAULT_LIMITS, Limits

    changes: dict[str, Any] = {}
    if getattr(args, "max_pixels", None) is not None:
        changes["max_pixels"] = args.max_pixels
    if getattr(args, "max_bytes", None) is not None:
        changes["max_bytes"] = args.max_bytes
    if getattr(args, "timeout", None) is not None:
        changes["read_timeout"] = args.timeout
        changes["connect_timeout"] = args.timeout
        changes["total_timeout"] = max(args.timeout, DEFAULT_LIMITS.total_timeout)
    if not changes:
        return DEFAULT_LIMITS
    limits: Limits = Limits(**{**DEFAULT_LIMITS.__dict__, **changes})
    return limits


# ---------------------------------------------------------------------------------------------
# Commands


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, load
    from .report import format_comparison, write_heatmap

    policy = policy_from_args(args)
    limits = limits_from_args(args)
    a = load(args.a, limits=limits, lazy=True)
    b = load(args.b, limits=limits, lazy=True)
    result = compare(a, b, policy=policy, limits=limits, keep_map=bool(args.diff))
    if args.diff:
        write_heatmap(result, a if _area(result.a) <= _area(result.b) else b, args.diff)
    if args.json:
        out = result.to_dict()
        if args.diff:
            out["diff"] = args.diff
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(format_comparison(result))
        if args.diff:
            print(f"  heatmap written to {args.diff}")
    return EXIT_MATCH if result.is_match else EXIT_NO_MATCH


def _area(info: Any) -> int:
    return int(info.width) * int(info.height)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(folder=args.dir, as_json=args.json)
