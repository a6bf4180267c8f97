"""Line envelope: split a raw log line into when, where, who logged it, and the message body.

Theory of operation
-------------------
:meth:`EnvelopeParser.parse` returns ``(Event, message)`` for a line whose envelope it
recognises, or ``None`` when it does not (the reader counts such a line as unparsed). The
MTA parsers (via :func:`relayguard.logs.dispatch.parse_message`) only ever see the message.

Formats (``fmt``), see FORMATS.md section A:

``auto``
    Per line, from the first character: ``{`` journal JSON, ``<`` PRI prefix (RFC 5424 or a
    traditional/forwarded BSD line), ``@`` TAI64N, a digit RFC 3339 (``T`` at index 10) or
    Exim mainlog (space at index 10), anything else BSD syslog. Detection is per line, so a
    file that switches from BSD to RFC 3339 stamps halfway through needs no configuration.
``syslog`` / ``maillog``
    BSD/RFC 3164 stamps (day padded, unpadded or zero-padded; ``maillog`` is the Postfix
    ``maillog_file`` flavour, which is the same shape), optionally behind a ``<PRI>``.
``rfc3339``
    RSYSLOG_FileFormat, syslog-ng ISO stamps and ``journalctl -o short-iso[-precise]``.
``rfc5424``, ``journal-json``, ``exim``, ``tai64n``
    Only that shape.

Tags: ``name[pid]:`` gives program ``name`` and the pid; ``name:`` gives program ``name``.
Any other tag (Dovecot ``log_path`` lines such as ``auth(user,ip,sasl:login)<id>: Info: ...``)
gives as program the name before the first ``(``, ``<`` or ``[`` and leaves the whole tag
at the start of the message, so the Dovecot parser sees it. A line with no host (Dovecot
``log_path``, multilog) is recognised by its first token ending in ``:``; the host is then
``""``. A line with a host but no tag gets program ``""`` and the rest as message.

Exim mainlog lines get program ``exim``, host ``""`` and the ``[pid]`` when logged. A syslog
or journal line from ``exim`` whose message starts with Exim's own stamp has that stamp
removed and used (it carries the year, which the syslog stamp lacks).

Journal JSON records become events whose ``raw`` is a readable line rebuilt from the record
(``<ISO time> <host> <program>[<pid>]: <message>``), not the JSON text, because ``raw`` is
what evidence shows a person.

Time is POSIX seconds (UTC). Stamps without an offset are local times in ``tz`` (a
``zoneinfo.ZoneInfo``; ``None`` means the machine's zone). BSD stamps have no year: an
explicit ``year`` is that of the first line, and it advances when the month jumps back by
more than six months (Dec -> Jan; a later straggler from December keeps the old year);
otherwise the year is that of ``reference_time`` (the file's mtime), minus one
when the stamp would lie more than a day after it. A BSD line whose month is not an English
abbreviation (localised syslog, FORMATS A4) keeps host, program and message with
``time=None``; the reader counts it and carries the previous line's time forward.

Speed: BSD stamps repeat, so stamp -> epoch is cached per 15-character stamp; ISO stamps are
cached per minute and the seconds added; tag -> (program, pid) is cached. All caches are
bounded by clearing when full.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from relayguard.logs.events import Event, iso_time

FORMATS = ("auto", "syslog", "maillog", "rfc3339", "rfc5424", "journal-json", "exim", "tai64n")

Parsed = tuple[Event, str] | None

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
EXIM_PROGRAMS = frozenset({"exim", "exim4", "exim-4"})

_CACHE_MAX = 8192
# TAI64 labels are 2**62 + TAI seconds; daemontools' multilog writes 2**62 + 10 + time(), so
# subtracting the 10 s TAI-UTC offset of 1970 gives back the Unix time the process logged.
_TAI64_UNIX = (1 << 62) + 10
_MAX_EPOCH = 253402300800.0  # 10000-01-01: later stamps are corrupt, not mail
_DAY = 86400.0

# Slow path only: a BSD-shaped stamp whose month name is unknown (localised) or oddly spaced.
_BSD_LOOSE = re.compile(r"(\S+) +(\d{1,2}) +(\d\d):(\d\d):(\d\d) +")
_EXIM_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _split_tag(tag: str) -> tuple[str, int | None, bool]:
    """(program, pid, tag_is_message) for a syslog tag without its ``:``."""
    if tag.endswith("]"):
        i = tag.rfind("[")
        pid_text = tag[i + 1 : -1]
        if i > 0 and pid_text.isdigit() and "(" not in tag and "<" not in tag:
            return tag[:i], int(pid_text), False
    elif "(" not in tag and "<" not in tag and "[" not in tag:
        return tag, None, False
    end = len(tag)
    for ch in "(<[":
        j = tag.find(ch)
        if 0 <= j < end:
            end = j
    return tag[:end], None, True


def _offset_seconds(zone: str) -> float | None:
    """Seconds east of UTC for ``Z``, ``+hh:mm`` or ``+hhmm``; None if malformed."""
    if zone == "Z" or zone == "z":
        return 0.0
    digits = zone[1:].replace(":", "")
    if zone[:1] not in "+-" or len(digits) != 4 or not digits.isdigit():
        return None
    secs = int(digits[:2]) * 3600 + int(digits[2:]) * 60
    return float(-secs if zone[0] == "-" else secs)


def _strip_structured_data(tail: str) -> str:
    """The MSG part of an RFC 5424 record after HEADER: skip ``-`` or ``[sd-element]...``."""
    if not tail.startswith("["):
        return tail[2:] if tail.startswith("-") else tail
    i, n, in_quote = 0, len(tail), False
    while i < n:
        ch = tail[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            in_quote = not in_quote
        elif ch == "]" and not in_quote and not tail.startswith("[", i + 1):
            return tail[i + 2 :]
        i += 1
    return ""


class EnvelopeParser:
    """Parse line envelopes of one input stream. Not thread-safe; one per reader."""

    def __init__(
        self,
        fmt: str = "auto",
        *,
        year: int | None = None,
        tz: tzinfo | None = None,
        reference_time: float | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
        if year is None and reference_time is None:
            raise ValueError("BSD syslog stamps have no year: give year or reference_time")
        self.fmt = fmt
        self._tz = tz
        self._year = year
        self._reference = reference_time
        self._last_month: int | None = None
        self._bsd_cache: dict[str, float] = {}
        self._bsd_unpadded: dict[str, float] = {}
        self._local_minutes: dict[str, float] = {}
        self._minute_base: dict[tuple[int, int, int, int, int], float] = {}
        self._utc_minutes: dict[str, float] = {}
        self._tags: dict[str, tuple[str, int | None, bool]] = {}
        # "name[pid]:" token (colon included) -> (program, pid), for tags needing no more work
        self._fast_tags: dict[str, tuple[str, int | None]] = {}
        self._offsets: dict[str, float | None] = {}
        by_first: dict[str, Callable[[str], Parsed]] = {
            "{": self._json,
            "<": self._pri,
            "@": self._tai64n,
        }
        for d in "0123456789":
            by_first[d] = self._rfc3339
        self._by_first = by_first
        self._exim_by_digit = fmt == "auto"
        forced: dict[str, Callable[[str], Parsed]] = {
            "auto": self._auto,
            "syslog": self._syslog_forced,
            "maillog": self._syslog_forced,
            "rfc3339": self._rfc3339,
            "rfc5424": self._rfc5424_forced,
            "journal-json": self._json,
            "exim": self._exim,
            "tai64n": self._tai64n,
        }
        self.parse: Callable[[str], Parsed] = forced[fmt]
        """``parse(line) -> (event, message) | None``; ``line`` has no trailing newline."""

    def start_source(self, reference_time: float | None) -> None:
        """A new input begins: infer BSD years from its mtime (unless a year was given)."""
        if reference_time is not None:
            self._reference = reference_time
        self._bsd_cache.clear()
        self._bsd_unpadded.clear()

    # --- dispatch --------------------------------------------------------------------------

    def _auto(self, line: str) -> Parsed:
        # The BSD hot path inlined (most mail logs), then dispatch on the first character.
        t = self._bsd_cache.get(line[:15])
        if t is not None:
            parts = line[16:].split(" ", 2)
            if len(parts) == 3:
                split = self._fast_tags.get(parts[1])
                if split is not None and parts[0][-1:] != ":":
                    return Event(t, parts[0], split[0], split[1], line), parts[2]
            return self._host_tag(t, line[16:], line, False)
        return self._by_first.get(line[:1], self._bsd_miss)(line)

    def _syslog_forced(self, line: str) -> Parsed:
        return self._pri(line) if line.startswith("<") else self._bsd(line)

    def _rfc5424_forced(self, line: str) -> Parsed:
        j = line.find(">", 1, 5)
        if j > 0 and line.startswith("<") and line.startswith("1 ", j + 1):
            return self._rfc5424(line, line[j + 3 :])
        return None

    # --- BSD / RFC 3164 --------------------------------------------------------------------

    def _bsd(self, line: str) -> Parsed:
        # Hot path: a padded stamp seen before, then "host name[pid]: message".
        t = self._bsd_cache.get(line[:15])
        if t is None:
            return self._bsd_miss(line)
        parts = line[16:].split(" ", 2)
        if len(parts) == 3:
            split = self._fast_tags.get(parts[1])
            if split is not None and parts[0][-1:] != ":":
                return Event(t, parts[0], split[0], split[1], line), parts[2]
        return self._host_tag(t, line[16:], line, False)

    def _bsd_miss(self, line: str) -> Parsed:
        if line[3:4] != " ":
            return self._bsd_loose(line)
        if line[6:7] == " " and line[15:16] == " ":  # "Dec 03 16:17:20 " / "Apr  6 13:05:01 "
            stamp, rest_at, cache = line[:15], 16, self._bsd_cache
        elif line[5:6] == " " and line[14:15] == " ":  # "Aug 3 15:30:49 "
            stamp, rest_at, cache = line[:14], 15, self._bsd_unpadded
        else:
            return self._bsd_loose(line)
        t = cache.get(stamp)
        if t is None:
            parts = stamp.split()
            month = MONTHS.get(parts[0]) if len(parts) == 3 else None
            if month is None:
                return self._bsd_loose(line)
            t = self._bsd_time(month, parts[1], parts[2])
            if t is None:
                return self._bsd_loose(line)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[stamp] = t
        return self._host_tag(t, line[rest_at:], line, False)

    def _bsd_loose(self, line: str) -> Parsed:
        m = _BSD_LOOSE.match(line)
        if m is None:
            return self._no_stamp(line)
        month = MONTHS.get(m[1][:3].title())
        t = None
        if month is not None:
            t = self._bsd_time(month, m[2], f"{m[3]}:{m[4]}:{m[5]}")
        return self._host_tag(t, line[m.end() :], line, False)

    def _no_stamp(self, line: str) -> Parsed:
        """``host exim[pid]: 2021-07-17 23:20:49 ...`` (Exim to syslog, file without a stamp)."""
        r = self._host_tag(None, line, line, False)
        if r is None or r[0].time is None:
            return None
        return r

    def _bsd_time(self, month: int, day: str, hms: str) -> float | None:
        if len(hms) != 8 or hms[2] != ":" or hms[5] != ":" or not day.isdigit():
            return None
        try:
            h, mi, s = int(hms[:2]), int(hms[3:5]), int(hms[6:])
        except ValueError:
            return None
        d = int(day)
        if self._year is not None:
            year = self._year
            last = self._last_month
            if last is None or abs(month - last) <= 6:
                self._last_month = month
            elif month < last:  # Dec -> Jan: the log entered a new year
                self._year = year = year + 1
                self._last_month = month
                self._bsd_cache.clear()
                self._bsd_unpadded.clear()
            else:  # a straggler from the previous year after the rollover
                year -= 1
            return self._local(year, month, d, h, mi, s)
        ref = self._reference
        assert ref is not None
        year = datetime.fromtimestamp(ref, self._tz).year
        t = self._local(year, month, d, h, mi, s)
        if t is None or t > ref + _DAY:
            t = self._local(year - 1, month, d, h, mi, s)
        return t

    def _local(self, y: int, mo: int, d: int, h: int, mi: int, s: int) -> float | None:
        # Busy logs see every second of a minute: convert the minute once, add the seconds.
        key = (y, mo, d, h, mi)
        base = self._minute_base.get(key)
        if base is None:
            try:
                base = datetime(y, mo, d, h, mi, tzinfo=self._tz).timestamp()
            except (ValueError, OverflowError):
                return None
            if len(self._minute_base) >= _CACHE_MAX:
                self._minute_base.clear()
            self._minute_base[key] = base
        if not 0 <= s <= 60:
            return None
        return base + s

    # --- host and tag ----------------------------------------------------------------------

    def _host_tag(self, t: float | None, rest: str, raw: str, hostless: bool) -> Parsed:
        sp = rest.find(" ")
        first = rest if sp < 0 else rest[:sp]
        if first.endswith(":"):
            host, tag = "", first[:-1]
            msg = "" if sp < 0 else rest[sp + 1 :]
        elif hostless:
            return Event(t, "", "", None, raw), rest
        else:
            if not first:
                return None
            host = first
            body = "" if sp < 0 else rest[sp + 1 :]
            sp = body.find(" ")
            tag = body if sp < 0 else body[:sp]
            if not tag.endswith(":"):
                return Event(t, host, "", None, raw), body
            tag = tag[:-1]
            msg = "" if sp < 0 else body[sp + 1 :]
        split = self._tags.get(tag)
        if split is None:
            split = _split_tag(tag)
            if len(self._tags) >= _CACHE_MAX:
                self._tags.clear()
                self._fast_tags.clear()
            self._tags[tag] = split
            if not split[2] and split[0] not in EXIM_PROGRAMS:
                self._fast_tags[tag + ":"] = split[0], split[1]
        program, pid, tag_is_message = split
        if tag_is_message:
            msg = f"{tag}: {msg}"
        ev = Event(t, host, program, pid, raw)
        if program in EXIM_PROGRAMS and msg[:1].isdigit():
            msg = self._exim_inner(ev, msg)
        return ev, msg

    def _exim_inner(self, ev: Event, msg: str) -> str:
        """Strip Exim's own stamp (and ``[pid]``) from a syslog/journal message; use its time."""
        if _EXIM_STAMP.match(msg) is None:
            return msg
        r = self._exim(msg)
        if r is None:
            return msg
        inner, body = r
        if inner.time is not None:
            ev.time = inner.time
        if ev.pid is None:
            ev.pid = inner.pid
        return body

    # --- ISO 8601 / RFC 3339 ---------------------------------------------------------------

    def _minute(self, key: str, local: bool) -> float | None:
        """Epoch of ``YYYY-MM-DD?HH:MM`` as UTC, or as local time in ``tz`` if ``local``."""
        cache = self._local_minutes if local else self._utc_minutes
        base = cache.get(key)
        if base is not None:
            return base
        if len(key) != 16 or key[4] != "-" or key[7] != "-" or key[13] != ":":
            return None
        try:
            dt = datetime(
                int(key[:4]),
                int(key[5:7]),
                int(key[8:10]),
                int(key[11:13]),
                int(key[14:16]),
                tzinfo=self._tz if local else UTC,
            )
            base = dt.timestamp()
        except (ValueError, OverflowError):
            return None
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = base
        return base

    def iso_time(self, stamp: str) -> float | None:
        """POSIX time of an RFC 3339 / ISO 8601 stamp (``T`` or space), None if malformed."""
        tail = stamp[16:]  # ":56", ":56.154748+00:00", ":30+0200", ":36.591Z"
        if tail[:1] != ":":
            return None
        zone = ""
        if tail.endswith(("Z", "z")):
            zone = tail[-1]
        elif tail[-6:-5] in ("+", "-") and tail[-3:-2] == ":":
            zone = tail[-6:]
        elif tail[-5:-4] in ("+", "-"):
            zone = tail[-5:]
        secs_text = tail[1 : len(tail) - len(zone)]
        if len(secs_text) < 2 or not secs_text[:2].isdigit():
            return None
        try:
            secs = float(secs_text)
        except ValueError:
            return None
        if zone:
            offset = self._offsets.get(zone)
            if offset is None:
                offset = _offset_seconds(zone)
                if offset is not None and len(self._offsets) < 64:
                    self._offsets[zone] = offset
            base = self._minute(stamp[:16], False)
            if offset is None or base is None:
                return None
            return base + secs - offset
        base = self._minute(stamp[:16], True)
        return None if base is None else base + secs

    def _rfc3339(self, line: str) -> Parsed:
        """RFC 3339 lines; in ``auto`` mode every line starting with a digit comes here."""
        # Hot path: RSYSLOG_FileFormat "2024-08-25T12:31:56.154748+00:00 host tag: msg". The
        # two lookups only hit for a minute and a zone that a full parse accepted before.
        if line[32:33] == " ":
            base = self._utc_minutes.get(line[:16])
            offset = self._offsets.get(line[26:32])
            if base is not None and offset is not None and line[19:20] == ".":
                try:
                    t = base + float(line[17:26]) - offset
                except ValueError:
                    return None
                parts = line[33:].split(" ", 2)
                if len(parts) == 3:
                    split = self._fast_tags.get(parts[1])
                    if split is not None and parts[0][-1:] != ":":
                        return Event(t, parts[0], split[0], split[1], line), parts[2]
                return self._host_tag(t, line[33:], line, False)
        sep = line[10:11]
        if sep == " " and self._exim_by_digit:
            return self._exim(line)
        if sep != "T":
            return None
        sp = line.find(" ")
        if sp < 0:
            return None
        stamp_time = self.iso_time(line[:sp])
        if stamp_time is None:
            return None
        return self._host_tag(stamp_time, line[sp + 1 :], line, False)

    # --- Exim mainlog ----------------------------------------------------------------------

    def _exim(self, line: str) -> Parsed:
        """``2013-06-10 18:33:32[.mmm] [+0100] [[pid]] message``."""
        if line[16:17] != ":" or line[10:11] != " ":
            return None
        sp = line.find(" ", 17)
        secs_text = line[17:] if sp < 0 else line[17:sp]
        rest = "" if sp < 0 else line[sp + 1 :]
        if not secs_text[:2].isdigit():
            return None
        try:
            secs = float(secs_text)
        except ValueError:
            return None
        offset = None
        if rest[:1] in ("+", "-") and rest[5:6] in (" ", "") and rest[1:5].isdigit():
            offset = _offset_seconds(rest[:5])
            rest = rest[6:]
        base = self._minute(line[:16], offset is None)
        if base is None:
            return None
        t = base + secs - (offset or 0.0)
        pid = None
        if rest.startswith("["):
            j = rest.find("] ")
            if j > 1 and rest[1:j].isdigit():
                pid = int(rest[1:j])
                rest = rest[j + 2 :]
            elif rest.endswith("]") and rest[1:-1].isdigit():
                pid, rest = int(rest[1:-1]), ""
        return Event(t, "", "exim", pid, line), rest

    # --- PRI-prefixed: RFC 5424 or forwarded BSD -------------------------------------------

    def _pri(self, line: str) -> Parsed:
        j = line.find(">", 1, 24)
        if j < 0:
            return None
        rest = line[j + 1 :]
        if line[1:j].isdigit() and rest.startswith("1 ") and self.fmt == "auto":
            return self._rfc5424(line, rest[2:])
        if not rest or rest[0] in "<{":
            return None
        # traditional "<22>Aug 25 ..." forward, or fail2ban's textual "<auth.info>" prefix
        r = self._by_first.get(rest[0], self._bsd)(rest) if self.fmt == "auto" else self._bsd(rest)
        if r is not None:
            r[0].raw = line
        return r

    def _rfc5424(self, line: str, header: str) -> Parsed:
        """``TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`` after ``<PRI>1 ``."""
        parts = header.split(" ", 5)
        if len(parts) < 5:
            return None
        stamp, host, app, procid, _msgid = parts[:5]
        t = None if stamp == "-" else self.iso_time(stamp)
        msg = _strip_structured_data(parts[5]) if len(parts) == 6 else ""
        if msg.startswith("\ufeff"):
            msg = msg[1:]
        ev = Event(
            t,
            "" if host == "-" else host,
            "" if app == "-" else app,
            int(procid) if procid.isdigit() else None,
            line,
        )
        if ev.program in EXIM_PROGRAMS and msg[:1].isdigit():
            msg = self._exim_inner(ev, msg)
        return ev, msg

    # --- multilog TAI64N -------------------------------------------------------------------

    def _tai64n(self, line: str) -> Parsed:
        label = line[1:25]
        if not line.startswith("@") or len(label) != 24 or line[25:26] not in (" ", ""):
            return None
        try:
            secs, nanos = int(label[:16], 16), int(label[16:], 16)
        except ValueError:
            return None
        return self._host_tag(secs - _TAI64_UNIX + nanos / 1e9, line[26:], line, True)

    # --- journalctl -o json ----------------------------------------------------------------

    def _json(self, line: str) -> Parsed:
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        if not isinstance(rec, dict):
            return None
        msg = rec.get("MESSAGE")
        if isinstance(msg, list):
            try:
                msg = bytes(msg).decode("utf-8", "replace")
            except (TypeError, ValueError):
                msg = ""
        elif not isinstance(msg, str):
            msg = ""
        program = rec.get("SYSLOG_IDENTIFIER") or rec.get("_COMM") or ""
        host = rec.get("_HOSTNAME") or ""
        pid_text = rec.get("SYSLOG_PID") or rec.get("_PID") or ""
        stamp = rec.get("__REALTIME_TIMESTAMP")
        if not isinstance(program, str) or not isinstance(host, str):
            return None
        pid = int(pid_text) if isinstance(pid_text, str) and pid_text.isdigit() else None
        t: float | None = None
        if isinstance(stamp, str) and stamp.isdigit() and len(stamp) <= 17:
            t = int(stamp) / 1e6
        elif isinstance(stamp, int) and not isinstance(stamp, bool):
            t = stamp / 1e6
        if t is not None and not 0 <= t < _MAX_EPOCH:
            t = None  # counted as a bad timestamp by the reader
        tag = f"{program}[{pid}]" if pid is not None else program
        raw = f"{iso_time(t) or '-'} {host or '-'} {tag}: {msg}"
        ev = Event(t, host, program, pid, raw)
        if program in EXIM_PROGRAMS and msg[:1].isdigit():
            msg = self._exim_inner(ev, msg)
        return ev, msg
