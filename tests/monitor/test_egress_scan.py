"""The egress sampler's shortcuts: only SMTP rows of /proc/net/tcp are decoded, and each
process is read once however many sockets it holds. Both must change no result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relayguard.monitor import egress

PORTS = frozenset({25, 587})
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt uid ..."
ROWS = [
    # listener on 127.0.0.1:25 (kept)
    "0: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1111 1 0",
    # listener on 0.0.0.0:443 (not SMTP)
    "1: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1112 1 0",
    # 10.1.2.3:40000 -> 8.8.8.8:25 established (kept)
    "2: 0302010A:9C40 08080808:0019 01 00000000:00000000 00:00000000 00000000 33 0 2222 1 0",
    # 10.1.2.3:40001 -> 8.8.8.8:587 SYN_SENT (kept)
    "3: 0302010A:9C41 08080808:024B 02 00000000:00000000 00:00000000 00000000 33 0 2223 1 0",
    # 10.1.2.3:40002 -> 8.8.8.8:25 TIME_WAIT (not outbound any more)
    "4: 0302010A:9C42 08080808:0019 06 00000000:00000000 00:00000000 00000000 0 0 0 1 0",
    # the server side of an inbound session: 127.0.0.1:25 <- 127.0.0.1:50000
    "5: 0100007F:0019 0100007F:C350 01 00000000:00000000 00:00000000 00000000 0 0 2224 1 0",
    # 10.1.2.3:40003 -> 8.8.8.8:443 (not SMTP)
    "6: 0302010A:9C43 08080808:01BB 01 00000000:00000000 00:00000000 00000000 33 0 2225 1 0",
    # malformed port
    "7: 0302010A:9C44 08080808:ZZZZ 01 00000000:00000000 00:00000000 00000000 33 0 2226 1 0",
]
TABLE = "\n".join([HEADER, *ROWS]) + "\n"


def test_port_filter_keeps_exactly_the_smtp_rows() -> None:
    kept = egress.parse_proc_net_tcp(TABLE, PORTS)
    assert [s.inode for s in kept] == [1111, 2222, 2223]
    every = egress.parse_proc_net_tcp(TABLE)
    assert [s.inode for s in every] == [1111, 1112, 2222, 2223, 0, 2224, 2225]
    assert egress.outbound_inodes(every, PORTS) == egress.outbound_inodes(kept, PORTS)
    php = egress.Process(10, "php-fpm8.2", 33, "www-data", "php-fpm: pool www")
    owners = {2222: [php], 2223: [php]}
    users = frozenset({"postfix"})
    assert (
        egress.summarize(kept, owners, PORTS, users).to_json()
        == egress.summarize(every, owners, PORTS, users).to_json()
    )


def _fake_proc(root: Path, pid: int, name: str, links: dict[str, str]) -> None:
    base = root / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "comm").write_text(name + "\n")
    (base / "cmdline").write_bytes(name.encode() + b"\0--flag\0")
    for fd, target in links.items():
        os.symlink(target, base / "fd" / fd)


def test_socket_owners_reads_each_process_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_proc(tmp_path, 10, "spammer", {"3": "socket:[500]", "4": "socket:[501]", "5": "/x"})
    _fake_proc(tmp_path, 11, "child", {"3": "socket:[501]", "4": "socket:[502]"})
    (tmp_path / "net").mkdir()  # not a pid: skipped
    reads: list[int] = []
    real = egress._process

    def counting(pid: int, proc: str, users: dict[int, str]) -> egress.Process | None:
        reads.append(pid)
        return real(pid, proc, users)

    monkeypatch.setattr(egress, "_process", counting)
    owners = egress.socket_owners({500, 501, 503}, str(tmp_path))
    assert sorted(reads) == [10, 11]
    assert sorted(owners) == [500, 501]
    assert [p.pid for p in owners[500]] == [10]
    assert sorted(p.pid for p in owners[501]) == [10, 11]
    spammer = owners[500][0]
    assert (spammer.name, spammer.cmdline) == ("spammer", "spammer --flag")
