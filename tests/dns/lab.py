"""The DNS lab: a real NSD serving generated zones on a free loopback port, and a blackhole.

Used by the test fixtures (tests/dns/conftest.py) and by bench/dns. Zones:

* ``dnsbl.test``: block lists. ``zen`` behaves like Spamhaus ZEN (test points, multi-code
  listings, IPv6 nibble names, one address answered with a sentinel), ``dbl`` like the DBL,
  ``multi`` like URIBL (bitmask), ``l2`` like UCEPROTECT L2; one wildcard zone per error
  sentinel (``pubres``, ``typo``, ``ratelimit``, ``uriblrefused``, ``bogus``), ``dead`` lists
  everything, ``empty`` has nothing, and ``bench01``..``bench20`` for the benchmark.
* ``dnsbl.sorbs.net``: lists everything (a dead list a naive checker still queries).
* ``broken.test``: configured without a zone file, so NSD answers SERVFAIL.
* ``example.test``, ``bare.test``, ``reports.test``, ``test``: SPF/DMARC/DKIM/MX cases.
* ``2.0.192.in-addr.arpa``, ``8.b.d.0.1.0.0.2.ip6.arpa``: PTR records.

Anything else is REFUSED by NSD. The blackhole is a UDP socket (and a TCP listener) on
127.0.0.1 that never answers: a list whose servers are down.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

REQUIRED = ("nsd", "nsd-checkconf", "openssl")
BENCH_LISTS = 20
LONG_SPF = "v=spf1 " + " ".join(f"ip4:10.0.{n}.0/24" for n in range(200)) + " -all"
HUGE_SPF = "v=spf1 " + " ".join(f"ip4:10.{n // 256}.{n % 256}.0/24" for n in range(600)) + " -all"
BENCH_NET = ipaddress.IPv4Network("198.18.0.0/22")  # RFC 2544 benchmarking range: 1024 IPs


def missing_commands() -> list[str]:
    return [c for c in REQUIRED if shutil.which(c) is None and not Path("/usr/sbin", c).exists()]


def _command(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _txt(text: str) -> str:
    """A TXT rdata of ``text`` cut into 255-byte character-strings."""
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def bench_listed(ip: ipaddress.IPv4Address, index: int) -> bool:
    """Whether bench list ``index`` (1..20) lists ``ip``: every 37th address, shifted per list."""
    return (int(ip) + index) % 37 == 0


class Keys:
    """DKIM test keys made by openssl: base64 of the DER public keys."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def rsa(self, bits: int, pkcs1: bool = False) -> str:
        key = self.folder / f"rsa{bits}.pem"
        if not key.exists():
            subprocess.run([_command("openssl"), "genrsa", "-out", str(key), str(bits)],
                           check=True, capture_output=True, timeout=120)  # fmt: skip
        out = "-RSAPublicKey_out" if pkcs1 else "-pubout"
        der = subprocess.run(
            [_command("openssl"), "rsa", "-in", str(key), out, "-outform", "DER"],
            check=True, capture_output=True, timeout=60,
        ).stdout
        return base64.b64encode(der).decode()

    def ed25519(self) -> str:
        key = self.folder / "ed25519.pem"
        if not key.exists():
            subprocess.run([_command("openssl"), "genpkey", "-algorithm", "ed25519", "-out",
                            str(key)], check=True, capture_output=True, timeout=60)  # fmt: skip
        der = subprocess.run(
            [_command("openssl"), "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
            check=True, capture_output=True, timeout=60,
        ).stdout
        return base64.b64encode(der[-32:]).decode()  # RFC 8463: the raw 32-byte key


def _soa(origin: str) -> str:
    return (f"$ORIGIN {origin}.\n$TTL 60\n"
            f"@ IN SOA ns1.dnsbl.test. hostmaster.{origin}. ( 1 3600 600 86400 60 )\n"
            f"  IN NS ns1.dnsbl.test.\n")  # fmt: skip


def dnsbl_zone() -> str:
    v6_test = ".".join(reversed(ipaddress.ip_address("::ffff:7f00:2").exploded.replace(":", "")))
    v6_listed = ".".join(reversed(ipaddress.ip_address("2001:db8::1").exploded.replace(":", "")))
    lines = [
        _soa("dnsbl.test"),
        "ns1 IN A 127.0.0.1",
        # zen: Spamhaus-ZEN-like; 127.0.0.2 listed (3 codes), 127.0.0.1 absent
        "2.0.0.127.zen IN A 127.0.0.2", "2.0.0.127.zen IN A 127.0.0.4",
        "2.0.0.127.zen IN A 127.0.0.10",
        '2.0.0.127.zen IN TXT "Listed: test point, see https://check.dnsbl.test/ip/127.0.0.2"',
        "99.2.0.192.zen IN A 127.0.0.3", "99.2.0.192.zen IN A 127.0.0.4",
        '99.2.0.192.zen IN TXT "https://check.dnsbl.test/query/ip/192.0.2.99"',
        "100.2.0.192.zen IN A 127.0.0.11",
        "101.2.0.192.zen IN A 127.0.0.99",  # a code ZEN does not document
        "254.2.0.192.zen IN A 127.255.255.254",  # the public-resolver sentinel for one name
        "77.2.0.192.zen IN A 127.0.0.2",
        f"77.2.0.192.zen IN TXT {_txt('x' * 3000)}",  # over the UDP size: TCP fallback
        f"{v6_test}.zen IN A 127.0.0.2",
        f"{v6_listed}.zen IN A 127.0.0.3",
        f'{v6_listed}.zen IN TXT "IPv6 listing 2001:db8::1"',
        # error sentinels and broken lists
        "*.pubres IN A 127.255.255.254", "*.typo IN A 127.255.255.252",
        "*.ratelimit IN A 127.255.255.255", "*.uriblrefused IN A 127.0.0.1",
        "*.bogus IN A 203.0.113.7", "*.dead IN A 127.0.0.2",
        # dbl: TEST listed, INVALID absent
        "test.dbl IN A 127.0.1.2",
        "spam-domain.test.dbl IN A 127.0.1.2",
        'spam-domain.test.dbl IN TXT "https://check.dnsbl.test/dbl/spam-domain.test"',
        "phish-domain.test.dbl IN A 127.0.1.4",
        "*.ipquery.dbl IN A 127.0.1.255",
        # multi: URIBL-like bitmask (2 black, 4 grey, 8 red); test point test.uribl.com
        "test.uribl.com.multi IN A 127.0.0.14",
        "spam-domain.test.multi IN A 127.0.0.6",
        # l2: UCEPROTECT-L2-like (informational)
        "2.0.0.127.l2 IN A 127.0.0.2", "50.2.0.192.l2 IN A 127.0.0.2",
    ]  # fmt: skip
    for index in range(1, BENCH_LISTS + 1):
        zone = f"bench{index:02d}"
        lines.append(f"2.0.0.127.{zone} IN A 127.0.0.2")
        for ip in BENCH_NET:
            if bench_listed(ip, index):
                reversed_ip = ".".join(reversed(str(ip).split(".")))
                lines.append(f"{reversed_ip}.{zone} IN A 127.0.0.2")
    return "\n".join(lines) + "\n"


def reverse_zones() -> dict[str, str]:
    v4 = _soa("2.0.192.in-addr.arpa") + "\n".join([
        "25 IN PTR mx1.example.test.",
        "99 IN PTR mx99.example.test.",
        "100 IN PTR generic-100.example.test.",
    ]) + "\n"  # fmt: skip
    one = ".".join(reversed(ipaddress.ip_address("2001:db8::25").exploded.replace(":", "")))
    v6 = _soa("8.b.d.0.1.0.0.2.ip6.arpa") + (
        f"{one.removesuffix('.8.b.d.0.1.0.0.2')} IN PTR mx1.example.test.\n"
    )
    return {"2.0.192.in-addr.arpa": v4, "8.b.d.0.1.0.0.2.ip6.arpa": v6}


def example_zone(keys: Keys) -> str:
    k2048, k1024, k512 = keys.rsa(2048), keys.rsa(1024), keys.rsa(512)
    split = 200
    lines = [
        _soa("example.test"),
        "@ IN MX 10 mx1",
        '@ IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.exa" "mple.test mx -all"',
        '@ IN TXT "google-site-verification=not-an-spf-record"',
        "@ IN A 192.0.2.80",
        "mx1 IN A 192.0.2.25", "mx1 IN AAAA 2001:db8::25",
        "mx99 IN A 192.0.2.99", "generic-100 IN A 192.0.2.200",
        '_spf IN TXT "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all"',
        '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@reports.test; '
        'ruf=mailto:forensic@example.test; adkim=s; aspf=r"',
        f'mail._domainkey IN TXT ( "v=DKIM1; k=rsa; p={k2048[:split]}" "{k2048[split:]}" )',
        # SPF cases
        'twospf IN TXT "v=spf1 mx -all"', 'twospf IN TXT "v=spf1 a ~all"',
        'plusall IN TXT "v=spf1 +all"',
        'qall IN TXT "v=spf1 mx ?all"', "qall IN MX 10 mx1",
        'noall IN TXT "v=spf1 ip4:192.0.2.25"',
        'softall IN TXT "v=spf1 ip4:192.0.2.25 ~all"',
        'ptrspf IN TXT "v=spf1 ptr -all"',
        'voids IN TXT "v=spf1 a:nx1.example.test a:nx2.example.test a:nx3.example.test -all"',
        'toomany IN TXT "v=spf1 include:i1.example.test include:i2.example.test '
        'include:i3.example.test include:i4.example.test include:i5.example.test '
        'include:i6.example.test -all"',
        'loop IN TXT "v=spf1 include:loop2.example.test -all"',
        'loop2 IN TXT "v=spf1 include:loop.example.test -all"',
        'missinginc IN TXT "v=spf1 include:nothere.example.test -all"',
        'wide IN TXT "v=spf1 ip4:0.0.0.0/1 -all"',
        'badsyntax IN TXT "v=spf1 ip4:192.0.2.1~all"',
        'leadspace IN TXT " v=spf1 -all"',
        'macro IN TXT "v=spf1 exists:%{i}._spf.example.test -all"',
        '192.0.2.25._spf IN A 127.0.0.2',
        'redir IN TXT "v=spf1 redirect=_spf.example.test"',
        'redirloop IN TXT "v=spf1 redirect=redirloop.example.test"',
        'incloop IN TXT "v=spf1 include:cnameloop.example.test -all"',
        "cnameloop IN CNAME cnameloop2", "cnameloop2 IN CNAME cnameloop",
        'garbage IN TXT "v=spf1 \\255\\000 ip4:1.2.3.4 -all"',
        'nopolicy IN TXT "v=spf1 -all"',
        '_dmarc.nopolicy IN TXT "v=DMARC1; p=none; rua=mailto:d@third-party.test"',
        # DMARC cases
        'dmarcbad IN TXT "v=spf1 -all"',
        '_dmarc.dmarcbad IN TXT "v=DMARC1; p=bogus; adkim=x; pct=150; foo=bar"',
        'dmarctwo IN TXT "v=spf1 -all"',
        '_dmarc.dmarctwo IN TXT "v=DMARC1; p=reject"',
        '_dmarc.dmarctwo IN TXT "v=DMARC1; p=none"',
        'spnone IN TXT "v=spf1 -all"',
        '_dmarc.spnone IN TXT "v=DMARC1; p=reject; sp=none"',
        'partial IN TXT "v=spf1 -all"',
        '_dmarc.partial IN TXT "v=DMARC1; p=quarantine; pct=50"',
        'wsdmarc IN TXT "v=spf1 -all"',
        '_dmarc.wsdmarc IN TXT "v = DMARC1 ; p = reject"',
        # DKIM cases, all under dkim.example.test
        'dkim IN TXT "v=spf1 -all"',
        f'mail._domainkey.dkim IN TXT ( "v=DKIM1; k=rsa; p={k2048[:split]}" "{k2048[split:]}" )',
        f'weak._domainkey.dkim IN TXT "v=DKIM1; k=rsa; p={k1024}"',
        f'tiny._domainkey.dkim IN TXT "v=DKIM1; k=rsa; p={k512}"',
        'revoked._domainkey.dkim IN TXT "v=DKIM1; k=rsa; p="',
        f'testing._domainkey.dkim IN TXT ( "v=DKIM1; t=y; k=rsa; p={k2048[:split]}" '
        f'"{k2048[split:]}" )',
        f'ed._domainkey.dkim IN TXT "v=DKIM1; k=ed25519; p={keys.ed25519()}"',
        'badb64._domainkey.dkim IN TXT "v=DKIM1; k=rsa; p=!!notbase64!!"',
        f'pkcs1._domainkey.dkim IN TXT "v=DKIM1; p={keys.rsa(1024, pkcs1=True)}"',
        f'mismatch._domainkey.dkim IN TXT "v=DKIM1; k=ed25519; p={k1024}"',
        "alias._domainkey.dkim IN CNAME mail._domainkey.dkim",
        "dangling._domainkey.dkim IN CNAME nothere.example.test.",
        f'twokeys._domainkey.dkim IN TXT "v=DKIM1; p={k1024}"',
        f'twokeys._domainkey.dkim IN TXT "v=DKIM1; p={k512}"',
        # MX cases
        "nullmx IN MX 0 .", 'nullmx IN TXT "v=spf1 -all"',
        "mxip IN MX 10 192.0.2.25.",
        "mxcname IN MX 10 mxalias", "mxalias IN CNAME mx1",
        "mxdangling IN MX 10 nothere.example.test.",
        # big answers
        *(f"hugetxt IN TXT {_txt(f'filler-{n:02d}-' + 'y' * 240)}" for n in range(40)),
        'hugetxt IN TXT "v=spf1 -all"',
        f"longspf IN TXT {_txt(LONG_SPF)}",
        # issue 5, a fresh user's pass: everyone passes without a top-level +all
        'inclplus IN TXT "v=spf1 include:plusall.example.test -all"',
        'redirplus IN TXT "v=spf1 redirect=plusall.example.test"',
        'existsall IN TXT "v=spf1 exists:%{i}.wild.example.test -all"', "*.wild IN A 127.0.0.2",
        # 80 TXT records before the SPF record; an SPF record over 8192 characters (TCP)
        *(f'manytxt IN TXT "verification-{n:02d}=token"' for n in range(80)),
        'manytxt IN TXT "v=spf1 ip4:192.0.2.25 -all"',
        f"hugespf IN TXT {_txt(HUGE_SPF)}",
        f"over40 IN TXT {_txt('v=spf1 ' + 'a:mx1.example.test ' * 45 + '-all')}",
        # a name with 41 addresses; a DMARC record whose v= is not first
        *(f"many IN A 198.51.100.{n}" for n in range(1, 42)),
        'd2 IN TXT "v=spf1 -all"', "d2 IN MX 10 mx1", '_dmarc.d2 IN TXT "p=reject; v=DMARC1"',
    ]  # fmt: skip
    for n, body in enumerate(("a mx", "a mx", "a mx", "a", "a", "a"), 1):
        lines += [f'i{n} IN TXT "v=spf1 {body} -all"', f"i{n} IN A 192.0.2.{n}"]
    return "\n".join(lines) + "\n"


def other_zones() -> dict[str, str]:
    return {
        "test": _soa("test"),
        "bare.test": _soa("bare.test") + '@ IN TXT "v=spf1 ip4:192.0.2.25 -all"\n',
        "reports.test": _soa("reports.test") + "\n".join([
            'example.test._report._dmarc IN TXT "v=DMARC1"',
            "@ IN MX 10 mx1.example.test.",
        ]) + "\n",
        "dnsbl.sorbs.net": _soa("dnsbl.sorbs.net") + "* IN A 127.0.0.2\n",
    }


class DnsLab:
    """NSD on 127.0.0.1:``port`` with the lab zones, and a blackhole on ``blackhole_port``."""

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="relayguard-dnslab-"))
        self.port = 0
        self.blackhole_port = 0
        self._blackhole: list[socket.socket] = []
        self.keys = Keys(self.root)

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def blackhole(self) -> str:
        return f"127.0.0.1:{self.blackhole_port}"

    def zones(self) -> dict[str, str]:
        return {
            "dnsbl.test": dnsbl_zone(),
            "example.test": example_zone(self.keys),
            **reverse_zones(),
            **other_zones(),
        }

    def start(self) -> None:
        self.port = free_port(udp=True)
        config = [
            "server:", f"    ip-address: 127.0.0.1@{self.port}", f"    port: {self.port}",
            "    server-count: 1", '    username: ""', '    chroot: ""',
            f'    zonesdir: "{self.root}"', '    database: ""',
            f'    zonelistfile: "{self.root}/zone.list"', f'    xfrdfile: "{self.root}/xfrd.state"',
            f'    pidfile: "{self.root}/nsd.pid"', f'    logfile: "{self.root}/nsd.log"',
            "    verbosity: 1", "    tcp-count: 200",
            # Debian builds NSD with response rate limiting (200 answers/s per /24): in the lab
            # every query comes from 127.0.0.1, so RRL would drop or truncate a bulk check.
            "    rrl-ratelimit: 0", "    rrl-whitelist-ratelimit: 0",
            "remote-control:", "    control-enable: no",
        ]  # fmt: skip
        for name, text in self.zones().items():
            (self.root / f"{name}.zone").write_text(text)
            config += ["zone:", f'    name: "{name}"', f'    zonefile: "{name}.zone"']
        config += ["zone:", '    name: "broken.test"', '    zonefile: "missing-on-purpose.zone"']
        (self.root / "nsd.conf").write_text("\n".join(config) + "\n")
        conf = str(self.root / "nsd.conf")
        subprocess.run([_command("nsd-checkconf"), conf], check=True, capture_output=True)
        subprocess.run([_command("nsd"), "-c", conf], check=True, capture_output=True, timeout=60)
        self._start_blackhole()
        self._wait_until_answering()

    def _start_blackhole(self) -> None:
        self.blackhole_port = free_port(udp=True)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", self.blackhole_port))  # never read: queries are dropped
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", self.blackhole_port))
        tcp.listen(64)  # never accepted: connections hang
        self._blackhole = [udp, tcp]

    def _wait_until_answering(self, timeout: float = 30.0) -> None:
        import dns.message
        import dns.query

        deadline = time.monotonic() + timeout
        query = dns.message.make_query("ns1.dnsbl.test.", "A")
        while True:
            try:
                reply = dns.query.udp(query, "127.0.0.1", timeout=0.5, port=self.port)
                if reply.answer:
                    return
            except (OSError, dns.exception.DNSException):
                pass
            if time.monotonic() > deadline:
                log = (self.root / "nsd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nsd does not answer on {self.resolver}:\n{log}")
            time.sleep(0.1)

    def pid(self) -> int | None:
        try:
            return int((self.root / "nsd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            (self.root / "nsd.pid").unlink(missing_ok=True)
        for sock in self._blackhole:
            sock.close()
        self._blackhole = []

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def lists_file(self, folder: Path, entries: list[dict[str, object]], name: str) -> Path:
        """A --lists TOML file with ``entries`` ([[list]] tables); values are str/bool."""
        out = []
        for entry in entries:
            out.append("[[list]]")
            for key, value in entry.items():
                if isinstance(value, bool):
                    out.append(f"{key} = {'true' if value else 'false'}")
                else:
                    out.append(f'{key} = "{value}"')
        path = folder / name
        path.write_text("\n".join(out) + "\n")
        return path
