"""The ``relayguard.watch/1`` document: one snapshot of everything the watcher knows.

Its ``exit_code`` is the check's: the verdict's code, except that a check which found nothing
(0) but could not take one of its samples says UNKNOWN (3, verdict ``unknown``): "OK" would
claim it looked.
"""

from __future__ import annotations

from typing import Any

from relayguard import __version__
from relayguard.findings import VERDICT_EXIT, ExitCode, Verdict, verdict_for
from relayguard.logs.events import iso_time
from relayguard.monitor.alerts import source_of
from relayguard.monitor.watcher import Watcher

WATCH_SCHEMA = "relayguard.watch/1"


def sampler_errors(w: Watcher) -> dict[str, str]:
    """sampler (``queue``, ``egress``, ``resources``) -> why its last sample failed."""
    s = w.samples
    parts = (("queue", s.queue), ("egress", s.egress), ("resources", s.resources))
    return {name: part.error for name, part in parts if part is not None and part.error}


def check_result(verdict: Verdict, errors: dict[str, str]) -> tuple[str, ExitCode]:
    """The verdict shown and the exit code of a ``--once`` check."""
    code = VERDICT_EXIT[verdict]
    if code == ExitCode.OK and errors:
        return "unknown", ExitCode.UNKNOWN
    return str(verdict), code


def document(w: Watcher, *, restored: bool, notes: list[str]) -> dict[str, Any]:
    now = w.clock()
    errors = sampler_errors(w)
    verdict, code = check_result(verdict_for(w.findings), errors)
    st = w.stats
    src = w.source.stats
    s = w.samples
    return {
        "schema": WATCH_SCHEMA,
        "version": __version__,
        "generated": iso_time(now),
        "host": w.host,
        "verdict": verdict,
        "exit_code": int(code),
        "sampler_errors": errors,
        "log": {
            "source": w.w.source,
            "path": w.w.log if w.w.source == "file" else None,
            "lines_read": st.lines_read,
            "lines_parsed": st.lines_parsed,
            "lines_unparsed": st.lines_unparsed,
            "lines_truncated": st.lines_truncated,
            "first_time": iso_time(st.first_time),
            "last_time": iso_time(st.last_time),
            "rotations": src.rotations,
            "truncations": src.truncations,
            "recovered_bytes": src.recovered_bytes,
            "lost_bytes": src.lost_bytes,
            "lag_bytes": w.source.lag_bytes(),
            "notes": list(src.notes),
        },
        "queue": s.queue.to_json(now) if s.queue is not None else None,
        "egress": s.egress.to_json() if s.egress is not None else None,
        "mta": s.resources.to_json() if s.resources is not None else None,
        "findings": [{"source": source_of(f), **f.to_json()} for f in w.findings],
        "alerts": [a.to_json() for a in w.alerts],
        "state": {"dir": str(w.state.path), "restored": restored, "notes": notes},
    }
