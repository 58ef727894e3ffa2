"""Reading a job's log: its progress, its last meaningful line, its tail.

A job's output is what the facetwin command prints - tqdm bars on stderr (redrawn in place with
``\\r``), result lines on stdout, and on failure ``facetwin: error: ...`` or a traceback. The
queue reads progress from the text instead of a side channel so that every command reports it
the same way the terminal does, with no change to the commands themselves.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

#: A tqdm bar: "desc:  57%|█████▋    | 41/72 [00:00<00:00, 70.75frame/s, clip.mp4]"
BAR = re.compile(r"^(?P<desc>.*?):?\s*(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<rest>.*)$")
ERROR_PREFIX = "facetwin: error:"
#: How much of a log's end is read to find progress and the last line: a few hundred bar
#: redraws, far more than the last one needs, and cheap to read twice a second.
SCAN_BYTES = 64 * 1024


def segments(text: str) -> list[str]:
    """The text's lines with tqdm's carriage-return redraws as lines of their own, stripped,
    empty ones dropped."""
    return [s.strip() for s in re.split(r"[\r\n]+", text) if s.strip()]


def last_progress(text: str) -> float | None:
    """The last tqdm percentage in ``text`` as 0..1, or None when no bar was drawn."""
    for seg in reversed(segments(text)):
        m = BAR.match(seg)
        if m:
            return min(int(m.group("pct")), 100) / 100
    return None


def compact_bar(seg: str) -> str:
    """A bar line without the bar graphic: "video 41/72 [00:00<00:00, 70.75frame/s]"."""
    m = BAR.match(seg)
    if not m:
        return seg
    return " ".join(p for p in (m.group("desc").strip(), m.group("rest").strip()) if p)


def last_message(text: str) -> str:
    """The line a person wants to see for a running or finished job: the last one printed,
    with a progress bar shown without its graphic."""
    segs = segments(text)
    return compact_bar(segs[-1]) if segs else ""


def summary_line(text: str) -> str:
    """The last line that is not a progress bar: a finished command's result line."""
    non_bars = [s for s in segments(text) if not BAR.match(s) and not s.startswith("---")]
    return non_bars[-1] if non_bars else last_message(text)


def failure_message(text: str, exit_code: int) -> str:
    """Why a job failed: its last ``facetwin: error:`` line (the CLI's one line), else the last
    line it printed (a traceback's exception), else how it ended."""
    segs = segments(text)
    errors = [s for s in segs if s.startswith(ERROR_PREFIX)]
    if errors:
        return errors[-1][len(ERROR_PREFIX) :].strip()
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"killed by {name}"
    non_bars = [s for s in segs if not BAR.match(s)]
    return non_bars[-1] if non_bars else f"exited with code {exit_code}"


def read_end(path: Path, start: int, max_bytes: int) -> str:
    """The text of ``path`` from byte ``start`` on, at most its last ``max_bytes``; a line cut
    by the limit is dropped. Empty when the file does not exist yet."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            begin = max(start, size - max_bytes, 0)
            f.seek(begin)
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if begin > start and begin > 0:
        cut = re.search(r"[\r\n]", text)
        text = text[cut.end() :] if cut else ""
    return text


def as_lines(text: str) -> str:
    """``text`` with tqdm's ``\\r`` redraws turned into newlines (one line per redraw, blank
    lines dropped) so that a web page or a terminal shows it as written."""
    lines = [ln.rstrip() for ln in re.split(r"\r\n|\r|\n", text)]
    kept = [ln for ln in lines if ln.strip()]
    return "\n".join(kept) + "\n" if kept else ""
