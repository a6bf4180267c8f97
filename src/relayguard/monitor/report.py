"""The ``relayguard.watch/1`` document: one snapshot of everything the watcher knows."""

from __future__ import annotations

from typing import Any

from relayguard import __version__
from relayguard.findings import VERDICT_EXIT, verdict_for
from relayguard.logs.events import iso_time
from relayguard.monitor.alerts import source_of
from relayguard.monitor.watcher import Watcher

WATCH_SCHEMA = "relayguard.watch/1"


def document(w: Watcher, *, restored: bool, notes: list[str]) -> dict[str, Any]:
    now = w.clock()
    verdict = verdict_for(w.findings)
    st = w.stats
    src = w.source.stats
    s = w.samples
    return {
        "schema": WATCH_SCHEMA,
        "version": __version__,
        "generated": iso_time(now),
        "host": w.host,
        "verdict": str(verdict),
        "exit_code": int(VERDICT_EXIT[verdict]),
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
