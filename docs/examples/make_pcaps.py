"""Write the crafted example captures of docs/pcap.md into a directory (default: the current one).

    python3 docs/examples/make_pcaps.py [DIR]

Needs only dpkt (a relayguard dependency: run it with .venv/bin/python). Writes demo.pcap,
demo.pcapng, relay.pcap, cut.pcap, corrupt.pcap, header-only.pcap, egress.pcap, classic.pcap
and classic.rules. Every session is a TCP connection written packet by packet: handshake,
the SMTP lines of both sides, close. The captures taken with tcpdump (live.pcap, late.pcap,
snap96.pcap) are of real traffic and are not made here.
"""

from __future__ import annotations

import base64
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

T0 = 1_796_313_600.0  # 2026-12-03 16:00:00Z
MX = "192.168.1.25"
SYN, FIN, PSH, ACK = dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_ACK
BANNER = "220 mx.example.org ESMTP Postfix\r\n"
EHLO_REPLY = "250-mx.example.org\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
MESSAGE = "Subject: hi\r\n\r\nhello\r\n.\r\n"
DENIED = "554 5.7.1 <{}>: Relay access denied\r\n"


@dataclass
class Frame:
    time: float
    data: bytes
    from_client: bool
    payload: bytes = b""


@dataclass
class Conn:
    """One TCP connection over Ethernet/IPv4: both sides' sequence numbers and a clock."""

    client: str
    cport: int
    server: str = MX
    sport: int = 25
    time: float = T0
    step: float = 0.01
    cseq: int = 1000
    sseq: int = 5000
    frames: list[Frame] = field(default_factory=list)

    def _frame(self, from_client: bool, flags: int, payload: bytes = b"") -> None:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        seq, ack = (self.cseq, self.sseq) if from_client else (self.sseq, self.cseq)
        tcp = dpkt.tcp.TCP(sport=sp, dport=dp, seq=seq, ack=ack, flags=flags, win=65535,
                           data=payload)  # fmt: skip
        ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst),
                        p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)  # fmt: skip
        ip.len = len(bytes(ip))
        eth = dpkt.ethernet.Ethernet(src=b"\x02\x00\x00\x00\x00\x01",
                                     dst=b"\x02\x00\x00\x00\x00\x02",
                                     type=dpkt.ethernet.ETH_TYPE_IP, data=ip)  # fmt: skip
        self.time += self.step
        self.frames.append(Frame(self.time, bytes(eth), from_client, payload))

    def open(self) -> Conn:
        self._frame(True, SYN)
        self.cseq += 1
        self._frame(False, SYN | ACK)
        self.sseq += 1
        self._frame(True, ACK)
        return self

    def c(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self._frame(True, PSH | ACK, raw)
        self.cseq = (self.cseq + len(raw)) & 0xFFFFFFFF

    def s(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self._frame(False, PSH | ACK, raw)
        self.sseq = (self.sseq + len(raw)) & 0xFFFFFFFF

    def say(self, *exchanges: tuple[str, str]) -> Conn:
        """(client line, server reply) pairs; "" leaves a side out."""
        for client, server in exchanges:
            if client:
                self.c(client)
            if server:
                self.s(server)
        return self

    def close(self) -> Conn:
        self._frame(True, FIN | ACK)
        self.cseq += 1
        self._frame(False, FIN | ACK)
        self.sseq += 1
        self._frame(True, ACK)
        return self


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def relay_session(conn: Conn, sender: str, rcpts: list[str], accept: bool = True) -> Conn:
    conn.open().say(("", BANNER), ("EHLO spambot.example\r\n", EHLO_REPLY),
                    (f"MAIL FROM:<{sender}>\r\n", "250 2.1.0 Ok\r\n"))  # fmt: skip
    for rcpt in rcpts:
        conn.say((f"RCPT TO:<{rcpt}>\r\n", "250 2.1.5 Ok\r\n" if accept else DENIED.format(rcpt)))
    if accept:
        conn.say(("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"),
                 (MESSAGE, "250 2.0.0 Ok: queued as 4ABC\r\n"))  # fmt: skip
    return conn.say(("QUIT\r\n", "221 2.0.0 Bye\r\n")).close()


def in_time_order(*conns: Conn) -> list[Frame]:
    return sorted((f for c in conns for f in c.frames), key=lambda f: f.time)


def write_pcap(path: Path, frames: list[Frame]) -> bytes:
    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=1, snaplen=65535)
        for frame in frames:
            writer.writepkt(frame.data, ts=frame.time)
    return path.read_bytes()


def write_pcapng(path: Path, frames: list[Frame]) -> None:
    with path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out)
        for frame in frames:
            writer.writepkt(frame.data, ts=frame.time)


def disordered_relay() -> Conn:
    """A stranger relays to three outside domains; two client segments swapped, one server
    reply sent twice (a retransmission)."""
    relay = relay_session(Conn("203.0.113.50", 40001), "offers@deals.example",
                          ["v1@target.example", "v2@other.example",
                           "v3@example.org.evil.example"])  # fmt: skip
    frames = relay.frames
    cdata = [i for i, f in enumerate(frames) if f.from_client and f.payload]
    frames[cdata[1]], frames[cdata[2]] = frames[cdata[2]], frames[cdata[1]]
    sdata = [i for i, f in enumerate(frames) if not f.from_client and f.payload]
    frames.insert(sdata[2] + 1, frames[sdata[2]])
    return relay


def demo_sessions() -> list[Conn]:
    """One of each kind, after the relay: inbound mail, probing, brute force, STARTTLS,
    egress from a web server, an authenticated account sending to 120 outside domains."""
    conns = [relay_session(Conn("198.51.100.20", 40100, time=T0 + 5), "news@partner.example",
                           ["bob@example.org", "alice@lists.example.org"])]  # fmt: skip
    for i in range(6):
        conns.append(relay_session(Conn("198.51.100.66", 40200 + i, time=T0 + 20 + i),
                                   "probe@scanner.example", [f"test{i}@target.example"],
                                   accept=False))  # fmt: skip
    for i in range(12):
        login = b64(f"\0user{i % 3}@example.org\0guess")
        c = Conn("203.0.113.9", 41000 + i, sport=587, time=T0 + 40 + i * 2).open()
        c.say(("", BANNER), ("EHLO ylmf-pc\r\n", EHLO_REPLY),
              (f"AUTH PLAIN {login}\r\n",
               "535 5.7.8 Error: authentication failed: authentication failure\r\n"),
              ("QUIT\r\n", "221 2.0.0 Bye\r\n"))  # fmt: skip
        conns.append(c.close())
    c = Conn("198.51.100.30", 42000, time=T0 + 70).open()
    c.say(("", BANNER), ("EHLO mx.partner.example\r\n", EHLO_REPLY),
          ("STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n"))  # fmt: skip
    c.c(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc" + b"\x00" * 40)
    c.s(b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + b"\x00" * 40)
    conns.append(c.close())
    c = Conn("192.168.1.80", 43000, server="198.51.100.200", time=T0 + 80).open()
    c.say(("", "220 mx.shop.example ESMTP\r\n"), ("EHLO web01.example.org\r\n", EHLO_REPLY))
    for i in range(2):
        c.say(("MAIL FROM:<www-data@web01.example.org>\r\n", "250 2.1.0 Ok\r\n"),
              (f"RCPT TO:<buyer{i}@shop.example>\r\n", "250 2.1.5 Ok\r\n"),
              ("DATA\r\n", "354 go ahead\r\n"), (MESSAGE, "250 2.0.0 Ok: queued\r\n"))  # fmt: skip
    conns.append(c.say(("QUIT\r\n", "221 Bye\r\n")).close())
    c = Conn("198.51.100.40", 44000, sport=587, time=T0 + 90, step=0.001).open()
    c.say(("", BANNER), ("EHLO laptop\r\n", EHLO_REPLY),
          (f"AUTH PLAIN {b64(chr(0) + 'carol@example.org' + chr(0) + 'pw')}\r\n",
           "235 2.7.0 Authentication successful\r\n"))  # fmt: skip
    for i in range(120):
        c.say(("MAIL FROM:<carol@example.org>\r\n", "250 2.1.0 Ok\r\n"),
              (f"RCPT TO:<lead{i}@company{i}.example>\r\n", "250 2.1.5 Ok\r\n"),
              ("DATA\r\n", "354 go ahead\r\n"), (MESSAGE, "250 2.0.0 Ok: queued\r\n"))  # fmt: skip
    conns.append(c.say(("QUIT\r\n", "221 Bye\r\n")).close())
    return conns


def egress_sessions() -> list[Conn]:
    """Hosts of ours with one and two sessions to an outside port 25; a relay on port 2525."""
    conns = []
    n = 0
    for host, sessions in (("192.168.1.81", 1), ("192.168.1.82", 2)):
        for _ in range(sessions):
            c = Conn(host, 45000 + n, server="198.51.100.200", time=T0 + n).open()
            c.say(("", BANNER), ("EHLO web\r\n", EHLO_REPLY),
                  ("MAIL FROM:<www-data@web.example.org>\r\n", "250 Ok\r\n"),
                  ("QUIT\r\n", "221 Bye\r\n"))  # fmt: skip
            conns.append(c.close())
            n += 1
    conns.append(relay_session(Conn("203.0.113.50", 40001, sport=2525, time=T0 + 10),
                               "s@x.example", ["v@target.example"]))  # fmt: skip
    return conns


CLASSIC_CASES = [  # one connection per RCPT line, with our server's reply
    ("RCPT TO:<bob@example.org>", "250 2.1.5 Ok"),
    ("RCPT TO:<alice@lists.example.org>", "250 2.1.5 Ok"),
    ("RCPT TO:<victim@target.example>", DENIED.format("victim@target.example").strip()),
    ("rcpt to:<victim@target.example>", DENIED.format("victim@target.example").strip()),
    ("RCPT TO:<x@example.org.evil.example>", DENIED.format("x@example.org.evil.example").strip()),
    ("RCPT TO:<victim%target.example@example.org>",
     "550 5.1.1 <victim%target.example@example.org>: Recipient address rejected"),
]  # fmt: skip
CLASSIC_RULE = (
    'alert tcp $EXTERNAL_NET any -> $SMTP_SERVERS 25 (msg:"classic relay rule"; '
    'content:"RCPT TO"; pcre:"/RCPT TO:\\s*<[^@]+@(?!example\\.org)[^>]+>/i"; '
    "sid:1999001; rev:1;)\n"
)


def classic_sessions() -> list[Conn]:
    conns = []
    for i, (line, reply) in enumerate(CLASSIC_CASES):
        c = Conn("198.51.100.7", 42000 + i, time=T0 + i).open()
        c.say(("", BANNER), ("EHLO scanner.example\r\n", EHLO_REPLY),
              ("MAIL FROM:<probe@scanner.example>\r\n", "250 2.1.0 Ok\r\n"),
              (line + "\r\n", reply + "\r\n"), ("QUIT\r\n", "221 Bye\r\n"))  # fmt: skip
        conns.append(c.close())
    return conns


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    relay = disordered_relay()
    # the relay session first, in its disorder (it ends before the next one begins)
    frames = relay.frames + in_time_order(*demo_sessions())
    demo = write_pcap(out / "demo.pcap", frames)
    write_pcapng(out / "demo.pcapng", frames)
    write_pcap(out / "relay.pcap", relay.frames)
    (out / "cut.pcap").write_bytes(demo[:58636])  # ends inside a record
    (out / "corrupt.pcap").write_bytes(demo[:50000] + b"\xff" * 300 + demo[50000:])
    (out / "header-only.pcap").write_bytes(demo[:24])
    write_pcap(out / "egress.pcap", in_time_order(*egress_sessions()))
    write_pcap(out / "classic.pcap", in_time_order(*classic_sessions()))
    (out / "classic.rules").write_text(CLASSIC_RULE)
    print(f"wrote demo.pcap ({len(frames)} packets) and the other examples to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
