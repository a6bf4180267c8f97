"""Messages assembled per queue id from the lines that mention them.

Postfix logs one message over many lines and processes (smtpd ``client=``, qmgr ``from=``,
smtp ``to=``, qmgr ``removed``); Exim and Sendmail over fewer. :class:`Correlator` keeps one
:class:`Message` per (host, queue id) until its queue file is removed. Memory is bounded: the
oldest open messages are evicted when there are too many or when they are older than the
configured age (a message that never completes, e.g. because the log starts or ends mid-way,
must not be kept forever).
"""

from __future__ import annotations

from collections import OrderedDict

from relayguard.logs.events import Event

_MAX_RECIPIENTS_TRACKED = 10_000  # per message; beyond this recipients are counted, not stored


class Message:
    __slots__ = (
        "client_ip",
        "client_name",
        "deferred",
        "external_recipients",
        "first_line",
        "host",
        "is_ndr",
        "message_id",
        "nrcpt",
        "origin",
        "parent_client_ip",
        "parent_sasl_username",
        "queue_id",
        "recipients",
        "reinjected",
        "sasl_username",
        "sender",
        "size",
        "time",
    )

    def __init__(self, host: str, queue_id: str, time: float | None) -> None:
        self.host = host
        self.queue_id = queue_id
        self.time = time
        self.client_ip: str | None = None
        self.client_name: str | None = None
        self.sasl_username: str | None = None
        self.origin: str | None = None  # smtpd | pickup | bounce | exim | sendmail
        self.sender: str | None = None  # None unknown, "" null sender
        self.size: int | None = None
        self.nrcpt: int | None = None
        self.recipients: set[str] = set()
        self.external_recipients = 0  # distinct external recipients seen so far
        self.is_ndr = False
        self.message_id: str | None = None
        # the same message again after a content filter / second instance: not new mail
        self.reinjected = False
        self.parent_client_ip: str | None = None
        self.parent_sasl_username: str | None = None
        self.deferred = False
        self.first_line = ""

    @property
    def authenticated(self) -> bool:
        return bool(self.sasl_username)

    def add_recipient(self, address: str) -> bool:
        """True when ``address`` is new for this message (first delivery attempt)."""
        if address in self.recipients:
            return False
        if len(self.recipients) < _MAX_RECIPIENTS_TRACKED:
            self.recipients.add(address)
        return True


class Correlator:
    """Tracks open messages; see the module docstring."""

    def __init__(self, max_open: int, max_age: float) -> None:
        self.max_open = max_open
        self.max_age = max_age
        self.open: OrderedDict[tuple[str, str], Message] = OrderedDict()
        self.evicted = 0
        self.queued = 0

    def get(self, ev: Event) -> Message | None:
        qid = ev.queue_id
        if qid is None:
            return None
        return self.open.get((ev.host, qid))

    def get_or_create(self, ev: Event) -> Message:
        qid = ev.queue_id or ""
        key = (ev.host, qid)
        msg = self.open.get(key)
        if msg is None:
            msg = Message(ev.host, qid, ev.time)
            msg.first_line = ev.raw
            self.open[key] = msg
            if len(self.open) > self.max_open:
                self.open.popitem(last=False)
                self.evicted += 1
        return msg

    # One handler per event type; each returns the message the event belongs to.
    def on_delivery(self, ev: Event) -> Message:
        msg = self.get_or_create(ev)
        if ev.status == "deferred":
            msg.deferred = True
        return msg

    def on_queued(self, ev: Event) -> Message:
        msg = self.get_or_create(ev)
        if msg.sender is None:
            self.queued += 1
        msg.sender = ev.sender
        if ev.size is not None:
            msg.size = ev.size
        if ev.nrcpt is not None:
            msg.nrcpt = ev.nrcpt
        if ev.mta != "postfix":  # Exim/Sendmail: the arrival line also names the client
            msg.origin = msg.origin or ev.mta
            self._set_client(msg, ev)
        return msg

    def on_client(self, ev: Event) -> Message | None:
        if ev.queue_id is None:  # Dovecot/Sendmail logins carry no queue id
            return None
        msg = self.get_or_create(ev)
        msg.origin = "smtpd"
        self._set_client(msg, ev)
        return msg

    def on_message_id(self, ev: Event) -> Message:
        msg = self.get_or_create(ev)
        msg.message_id = ev.message_id
        return msg

    def on_pickup(self, ev: Event) -> Message:
        msg = self.get_or_create(ev)
        msg.origin = "pickup"
        if msg.sender is None:
            msg.sender = ev.sender
        return msg

    def on_ndr(self, ev: Event) -> Message | None:
        parent = self.get(ev)
        if ev.child_queue_id:
            child_key = (ev.host, ev.child_queue_id)
            child = self.open.get(child_key)
            if child is None:
                child = Message(ev.host, ev.child_queue_id, ev.time)
                child.first_line = ev.raw
                self.open[child_key] = child
            child.is_ndr = True
            child.origin = "bounce"
            if parent is not None:
                child.parent_client_ip = parent.client_ip
                child.parent_sasl_username = parent.sasl_username
        return parent

    def on_removed(self, ev: Event) -> Message | None:
        if ev.queue_id is None:
            return None
        return self.open.pop((ev.host, ev.queue_id), None)

    @staticmethod
    def _set_client(msg: Message, ev: Event) -> None:
        if ev.client_ip is not None:
            msg.client_ip = ev.client_ip
            msg.client_name = ev.client_name
        if ev.sasl_username:
            msg.sasl_username = ev.sasl_username.lower()
        if msg.first_line == "" or msg.origin == "smtpd":
            msg.first_line = ev.raw

    def expire(self, now: float) -> int:
        """Evict messages opened more than max_age before ``now``; returns how many."""
        n = 0
        limit = now - self.max_age
        while self.open:
            key, msg = next(iter(self.open.items()))
            if msg.time is None or msg.time >= limit:
                break
            del self.open[key]
            n += 1
        self.evicted += n
        return n
