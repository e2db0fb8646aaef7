"""A cache for reports computed from a whole project (agreement, the disagreement queue), keyed on a revision.

The dashboard asks for agreement every 5 s, from every admin's browser; at 100k items one computation costs
seconds (reading every label, then pure Python). `ReportCache.get` returns the last report while the project's
revision (read by the caller in the same transaction as the data) is unchanged, computes one report at a time
(a request arriving meanwhile gets the last one, or waits for the first), and backs off when labels keep
arriving: a report that took REPORT_SLOW_S or more is recomputed at most once per REPORT_BACKOFF times its cost
(a 7 s report at most every 70 s): the numbers lag a little, the server keeps up. Reports are shared between
callers: never change one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

REPORT_SLOW_S = 1.0
REPORT_BACKOFF = 10
MAX_ENTRIES = 256  # many projects or many min_share values: start over past this many


@dataclass(frozen=True)
class CachedReport:
    revision: Hashable
    report: object
    at: float  # time.monotonic() when computed
    took: float  # seconds the computation took

    def backing_off(self) -> bool:
        return self.took >= REPORT_SLOW_S and time.monotonic() - self.at < REPORT_BACKOFF * self.took


class ReportCache:
    """Thread-safe; one per Store (each process checks the revision in the database, so several servers on
    one database stay right)."""

    def __init__(self):
        self.entries: dict[Hashable, CachedReport] = {}
        self.busy: dict[Hashable, threading.Lock] = {}  # held while that key's report is being computed
        self.lock = threading.Lock()

    def get(self, key: Hashable, revision: Hashable, compute: Callable[[], object]):
        with self.lock:
            hit = self.entries.get(key)
            busy = self.busy.setdefault(key, threading.Lock())
        if hit is not None and (hit.revision == revision or hit.backing_off()):
            return hit.report
        if hit is not None and not busy.acquire(blocking=False):
            return hit.report  # someone is recomputing it right now
        if hit is None:
            busy.acquire()
        try:
            with self.lock:
                hit = self.entries.get(key)
            if hit is not None and hit.revision == revision:  # computed while this request waited
                return hit.report
            started = time.monotonic()
            report = compute()
            now = time.monotonic()
            with self.lock:
                if len(self.entries) >= MAX_ENTRIES:
                    self.entries.clear()
                self.entries[key] = CachedReport(revision, report, now, now - started)
            return report
        finally:
            busy.release()
