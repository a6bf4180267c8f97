"""What reading a capture counted: packets seen, what was skipped and why."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class CaptureStats:
    path: str = ""
    format: str = ""  # "pcap", "pcapng" (+ ", gzip")
    bytes_read: int = 0  # bytes of the file consumed
    packets: int = 0  # packet records read
    packet_bytes: int = 0  # captured bytes of those records
    smtp_segments: int = 0  # TCP segments on an SMTP port, handed to reassembly
    first_time: float | None = None
    last_time: float | None = None
    link_types: dict[int, int] = field(default_factory=dict)
    # skipped, by reason
    not_ip: int = 0  # ARP, LLDP, other ethertypes
    not_tcp: int = 0  # UDP, ICMP, ...
    ip_fragments: int = 0  # fragmented IP packets (not reassembled)
    malformed: int = 0  # headers that do not fit the captured bytes or are invalid
    unsupported_link: int = 0  # link types no decoder here understands
    snapped: int = 0  # SMTP segments cut short by the capture's snap length
    corrupt_records: int = 0  # record headers that made no sense; reading resumed after them
    corrupt_bytes: int = 0  # bytes skipped to find the next good record
    truncated_end: bool = False  # the file ends inside a record (a capture cut short)
    unknown_interface: int = 0  # pcapng packet blocks naming an interface never described
    other_blocks: int = 0  # pcapng blocks that carry no packets (statistics, names, ...)
    stopped_at: int | None = None  # the byte where reading had to stop before the end
    bytes_not_read: int = 0  # the bytes after that point, counted but not read

    @property
    def bytes_total(self) -> int:
        return self.bytes_read + self.bytes_not_read

    @property
    def skipped_packets(self) -> int:
        return self.not_ip + self.not_tcp

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = (
                {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
            )
        return out
