"""Defaults for the command line's common options, from environment variables and a config file.

Precedence, highest first: the command line; an environment variable ``SAMEPIX_<OPTION>``
(``SAMEPIX_WORKERS=4``, ``SAMEPIX_FLIP_IS_SAME=1``); the config file (``[defaults]`` for every
command, ``[<command>]`` for one, which wins over ``[defaults]``); samepix's own default.

The config file is INI (Python's configparser: no dependency, every Python version):
``$SAMEPIX_CONFIG`` if set, else ``config.ini`` in the user config directory
(``~/.config/samepix/`` on Linux, from platformdirs). Keys are option names without the dashes,
with ``-`` or ``_``::

    [defaults]
    workers = 4
    progress = false

    [sync]
    concurrency = 8

Only the options in :data:`SETTABLE` can be set this way: the ones a user sets the same way on
every run. Paths and sources are not (a default folder would surprise).
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from .errors import UsageError

__all__ = ["SETTABLE", "config_path", "load_defaults"]

SETTABLE = (
    "workers", "progress", "concurrency", "per_host", "retries", "timeout", "max_pixels",
    "max_bytes", "min_ssim", "min_worst_region", "max_colour_shift", "greyscale_is_same",
    "flip_is_same", "rotation_is_same", "crop_is_same", "no_private",
)  # fmt: skip
"""Option names (argparse ``dest``) that take defaults from the environment or the file."""


def config_path() -> Path:
    """Where the config file is read from (it need not exist)."""
    explicit = os.environ.get("SAMEPIX_CONFIG")
    if explicit:
        return Path(explicit)
    from platformdirs import user_config_dir

    return Path(user_config_dir("samepix", appauthor=False)) / "config.ini"


def load_defaults(command: str, options: set[str]) -> dict[str, tuple[str, str]]:
    """``{dest: (text, where it came from)}`` for the settable ``options`` of ``command``."""
    wanted = [name for name in SETTABLE if name in options]
    found: dict[str, tuple[str, str]] = {}
    path = config_path()
    if path.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the config file ({exc})") from exc
        known = {n.replace("_", "-") for n in SETTABLE} | set(SETTABLE)
        for section in parser.sections():
            for key in parser[section]:
                if key not in known:
                    raise UsageError(
                        f"{path}: [{section}] {key}: not a setting "
                        f"(one of {', '.join(n.replace('_', '-') for n in SETTABLE)})"
                    )
        for section in ("defaults", command):
            if parser.has_section(section):
                for name in wanted:
                    for key in (name, name.replace("_", "-")):
                        if parser.has_option(section, key):
                            found[name] = (parser.get(section, key), f"{path}: [{section}] {key}")
    for name in wanted:
        variable = f"SAMEPIX_{name.upper()}"
        if variable in os.environ:
            found[name] = (os.environ[variable], variable)
    return found
