"""``relayguard pcap`` and ``relayguard ids-rules``: relay abuse seen on the wire.

capture (pcap/pcapng reading, fast path + dpkt; decompress: gzip/bzip2/xz read forward, a cut
stream read up to the cut), flows (TCP reassembly, bounded),
conversation (both sides of an SMTP dialogue on the shared smtp/ syntax), analyzer (facts ->
the log analyzer's detectors, plus egress; bounds: per-client state and low findings
kept), result/render (JSON and terminal), run (the shell),
ids (Suricata/Snort rules).
"""

from relayguard.wire._errors import CaptureError
from relayguard.wire.analyzer import WireOptions
from relayguard.wire.result import PCAP_SCHEMA, PcapResult
from relayguard.wire.run import analyze_capture

__all__ = ["PCAP_SCHEMA", "CaptureError", "PcapResult", "WireOptions", "analyze_capture"]
