"""DKIM key records (RFC 6376 s.3.6, RFC 8301, RFC 8463): selectors, key type and size. Pure
parsing plus a generator core that asks for ``<selector>._domainkey.<domain>``.

Selectors cannot be listed, only guessed: from ``--dkim-selector``, the ``s=`` of a message's
DKIM-Signature, or a dictionary of common ones. ``_domainkey.<domain>`` answering NXDOMAIN
means no selector exists at all (RFC 8020), and then nothing is guessed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Generator
from dataclasses import dataclass, field

from relayguard.dns._events import Answer, Query, Status

# Compiled from open-source DKIM checkers and provider documentation (AUTH.md s.4).
COMMON_SELECTORS = (
    "default", "dkim", "mail", "email", "smtp", "selector", "key1", "key2", "k1", "k2", "k3",
    "s1", "s2", "s1024", "s2048", "selector1", "selector2", "google", "mandrill", "smtpapi",
    "mx", "krs", "pic", "zoho", "zmail", "fm1", "fm2", "fm3", "mimecast", "proofpoint", "pp",
    "mxvault", "cm", "everlytickey1", "everlytickey2", "dkim1024", "sig1", "dk", "mta",
)  # fmt: skip
MAX_SELECTORS = 60
_RSA_OID = bytes.fromhex("2a864886f70d010101")
_ED25519_OID = bytes.fromhex("2b6570")
_SELECTOR = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62})")
_SIGNATURE = re.compile(r"^dkim-signature:(.*(?:\n[ \t].*)*)", re.I | re.M)

Steps = Generator[list[Query], list[Answer], "DkimResult"]


class KeyError_(ValueError):
    """The p= value is not a usable public key."""


@dataclass(slots=True)
class Key:
    selector: str
    record: str
    origin: str  # "option", "message" or "guess"
    tags: dict[str, str] = field(default_factory=dict)
    key_type: str = "rsa"
    bits: int | None = None
    revoked: bool = False
    testing: bool = False
    error: str | None = None  # record or key unusable
    cname: tuple[str, ...] = ()
    records: int = 1  # TXT records at the name


@dataclass(slots=True)
class Missing:
    selector: str
    origin: str
    status: str  # nxdomain | nodata | timeout ...
    dangling: str | None = None  # a CNAME pointing at nothing


@dataclass(slots=True)
class DkimResult:
    domain: str
    keys: list[Key] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    guessed: int = 0  # dictionary selectors asked
    no_domainkey: bool = False  # _domainkey.<domain> is NXDOMAIN
    errors: list[str] = field(default_factory=list)


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise KeyError_("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise KeyError_("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise KeyError_("truncated DER")
    return tag, pos, pos + length


def _rsa_bits(pkcs1: bytes) -> int:
    tag, start, _ = _der(pkcs1, 0)
    if tag != 0x30:
        raise KeyError_("not an RSA public key")
    tag, mstart, mend = _der(pkcs1, start)
    if tag != 0x02:
        raise KeyError_("not an RSA public key")
    modulus = pkcs1[mstart:mend].lstrip(b"\x00")
    return int.from_bytes(modulus, "big").bit_length()


def key_info(p: str, k: str) -> tuple[str, int]:
    """(key type, bits) of a p= value; raises KeyError_."""
    try:
        der = base64.b64decode("".join(p.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_("p= is not valid base64") from None
    if k == "ed25519" and len(der) == 32:
        return "ed25519", 256
    tag, start, _ = _der(der, 0)
    if tag != 0x30:
        raise KeyError_("p= is not a DER public key")
    first, fstart, fend = _der(der, start)
    if first == 0x02:  # PKCS#1 RSAPublicKey, which some tools publish
        return "rsa", _rsa_bits(der)
    if first != 0x30:
        raise KeyError_("p= is not a DER public key")
    oid_tag, ostart, oend = _der(der, fstart)
    oid = der[ostart:oend] if oid_tag == 0x06 else b""
    bit_tag, bstart, bend = _der(der, fend)
    if bit_tag != 0x03 or bend <= bstart:
        raise KeyError_("p= is not a DER public key")
    inner = der[bstart + 1 : bend]
    if oid == _RSA_OID:
        return "rsa", _rsa_bits(inner)
    if oid == _ED25519_OID and len(inner) == 32:
        return "ed25519", 256
    raise KeyError_("p= holds a key of an unknown type")


def parse_key(selector: str, record: str, origin: str) -> Key:
    key = Key(selector, record, origin)
    tags: dict[str, str] = {}
    for n, part in enumerate(record.split(";")):
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not name and not eq:
            continue
        if not eq:
            key.error = f"{part.strip()[:40]!r} is not a tag=value pair"
            return key
        if name == "v" and (n != 0 or value.strip() != "DKIM1"):
            key.error = "v= must be first and DKIM1 (RFC 6376 s.3.6.1)"
        tags.setdefault(name, value.strip())
    key.tags = tags
    if "p" not in tags:
        key.error = key.error or "no p= tag: not a DKIM key record"
        return key
    key.testing = "y" in [f.strip().lower() for f in tags.get("t", "").split(":")]
    k = tags.get("k", "rsa").lower()
    key.key_type = k
    if not "".join(tags["p"].split()):
        key.revoked = True
        return key
    if k not in ("rsa", "ed25519"):
        key.error = f"k={k}: not a key type verifiers know (rsa, ed25519)"
        return key
    try:
        found, bits = key_info(tags["p"], k)
    except KeyError_ as exc:
        key.error = str(exc)
        return key
    if found != k:
        key.error = f"k={k} but p= holds an {found} key"
    key.bits = bits if found == "rsa" else None
    return key


def _strength(key: Key) -> tuple[bool, bool, int]:
    """Orders keys weakest first: unusable, revoked, then by size (ed25519 counts as strong)."""
    return (key.error is None, not key.revoked, key.bits if key.bits is not None else 1 << 30)


def selectors_from_message(text: str) -> list[tuple[str, str]]:
    """(d=, s=) of every DKIM-Signature header in a message's header block."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    out = []
    for match in _SIGNATURE.finditer(head):
        tags = {}
        for part in re.sub(r"\s+", "", match.group(1)).split(";"):
            name, _, value = part.partition("=")
            tags[name.lower()] = value
        if tags.get("s") and tags.get("d"):
            out.append((tags["d"].lower().rstrip("."), tags["s"]))
    return out


def valid_selector(text: str) -> bool:
    return _SELECTOR.fullmatch(text) is not None and ".." not in text


def check(domain: str, chosen: list[tuple[str, str]]) -> Steps:
    """``chosen``: (selector, origin) pairs; none given -> guess from :data:`COMMON_SELECTORS`."""
    result = DkimResult(domain)
    if not chosen:
        (probe,) = yield [Query(f"_domainkey.{domain}.", "TXT")]
        if probe.status is Status.NXDOMAIN:
            result.no_domainkey = True
            return result
        if probe.status.failed:  # the guesses would fail the same way, 40 times over
            result.errors.append(f"{probe.query}: {probe.failure}")
            return result
        chosen = [(s, "guess") for s in COMMON_SELECTORS]
        result.guessed = len(chosen)
    chosen = list(dict.fromkeys(chosen))[:MAX_SELECTORS]
    answers = yield [Query(f"{s}._domainkey.{domain}.", "TXT") for s, _ in chosen]
    for (selector, origin), answer in zip(chosen, answers, strict=True):
        if answer.status.failed:
            if answer.detail.startswith("CNAME loop"):
                result.errors.append(f"{selector}: CNAME loop")
            else:
                result.errors.append(f"{answer.query}: {answer.failure}")
            continue
        if not answer.ok:
            dangling = answer.cname_chain[-1].rstrip(".") if answer.cname_chain else None
            if origin != "guess" or dangling:  # a wrong guess says nothing
                result.missing.append(Missing(selector, origin, answer.status.value, dangling))
            continue
        keys = [r for r in answer.records if "p=" in r.replace(" ", "")]
        # Several key records at one name: a verifier may take any of them, so the weakest
        # is the one that counts (the records come in no fixed order).
        key = min((parse_key(selector, r, origin) for r in keys or answer.records[:1]),
                  key=_strength)  # fmt: skip
        key.cname = answer.cname_chain
        key.records = len(keys)
        result.keys.append(key)
    return result
