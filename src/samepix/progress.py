"""A one-line progress display on a terminal: ``decoding 1,234/10,000 12% 45.2/s eta 3m12s``.

Hand-written rather than tqdm: one line, redrawn in place with ``\\r`` at most ten times a second,
is all the CLI needs, and it costs no dependency and no import time.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from .index import Progress

__all__ = ["ProgressLine"]


class ProgressLine:
    """Callable that draws :class:`~samepix.index.Progress` reports on one line of ``stream``.

    Parameters
    ----------
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    interval : float
        Least seconds between two redraws (the last report of a stage is always drawn).
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._stage = ""
        self._stage_start = 0.0
        self._stage_done = 0  # items already done when the stage was first reported
        self._last_draw = 0.0
        self._width = 0

    def __call__(self, report: Progress) -> None:
        now = time.monotonic()
        if report.stage != self._stage:
            self._stage, self._stage_start, self._stage_done = report.stage, now, report.done
        finished = report.done >= report.total
        if not finished and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        self._draw(self._format(report, now - self._stage_start))

    def _format(self, report: Progress, elapsed: float) -> str:
        text = f"{report.stage} {report.done:,}/{report.total:,}"
        if report.total:
            text += f" {100 * report.done // report.total}%"
        # The rate counts only what was done while this line watched: work finished before the
        # stage's first report (a first chunk) would make it look faster and the ETA too short.
        seen = report.done - self._stage_done
        if elapsed > 0.5 and seen > 0:
            rate = seen / elapsed
            text += f" {rate:.1f}/s"
            if report.done < report.total:
                text += f" eta {_duration((report.total - report.done) / rate)}"
        return text

    def _draw(self, text: str) -> None:
        pad = " " * max(0, self._width - len(text))
        self._width = len(text)
        try:
            self.stream.write(f"\r{text}{pad}")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the work
            pass

    def close(self) -> None:
        """End the line (call once the work is done, before printing anything else)."""
        if self._width:
            self._draw("")
            try:
                self.stream.write("\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._width = 0


def _duration(seconds: float) -> str:
    s = math.ceil(seconds)  # work is left: never "0s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
