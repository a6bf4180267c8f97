"""Enough of an Exim configuration for the EX rules: options, named lists, ACLs, drivers.

Theory of operation: a trailing backslash joins the next line (its leading blanks dropped);
lines whose first non-blank character is ``#`` are comments. Before the first ``begin``,
``NAME = value`` with an upper-case first letter defines a macro, substituted in every later
line; ``.ifdef``/``.ifndef``/``.elifdef``/``.else``/``.endif`` are honoured. ``.include`` files
are not followed (a warning says so). The main section holds options (``name = value``,
``name`` / ``no_name`` for booleans) and named lists (``hostlist relay_from_hosts = ...``);
``begin acl`` holds ``name:`` headers and statements (a verb, then one condition or modifier per
line); routers, transports and authenticators are ``name:`` headers with options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ACL_VERBS = frozenset({"accept", "deny", "defer", "discard", "drop", "require", "warn"})
LIST_KINDS = frozenset({"hostlist", "domainlist", "addresslist", "localpartlist"})
_MACRO = re.compile(r"\b[A-Z][A-Za-z0-9_]*\b")
_DRIVER_SECTIONS = ("routers", "transports", "authenticators")


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    value: str
    line: int
    source: str


@dataclass(frozen=True, slots=True)
class AclStatement:
    verb: str
    line: int
    source: str
    conditions: tuple[tuple[str, str], ...] = ()  # (name, value); negation kept: "!hosts"


@dataclass(slots=True)
class Driver:
    name: str
    line: int
    options: dict[str, Option] = field(default_factory=dict)


@dataclass(slots=True)
class EximConfig:
    file: str
    options: dict[str, Option] = field(default_factory=dict)
    lists: dict[str, tuple[str, Option]] = field(default_factory=dict)  # name -> (kind, def)
    acls: dict[str, list[AclStatement]] = field(default_factory=dict)
    drivers: dict[str, list[Driver]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # every "begin NAME", in order

    def option(self, name: str) -> Option | None:
        return self.options.get(name)

    def where(self, line: int) -> str:
        return f"{self.file}:{line}"


def _logical(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        lines.append((start, "".join(pending)))
        pending = []
    if pending:
        lines.append((start, "".join(pending)))
    return lines


class _Parser:
    def __init__(self, file: str) -> None:
        self.cfg = EximConfig(file)
        self.macros: dict[str, str] = {}
        self.section = "main"
        self.skip: list[bool] = []  # per open .if: skipping?
        self.acl: list[AclStatement] | None = None
        self.driver: Driver | None = None

    def feed(self, number: int, text: str) -> None:
        if text.startswith("."):
            self._directive(number, text)
            return
        if any(self.skip):
            return
        if self.macros:
            text = _MACRO.sub(lambda m: self.macros.get(m.group(0), m.group(0)), text)
        if text.startswith("begin "):
            self.section = text[6:].strip().lower()
            self.cfg.sections.append(self.section)
            self.acl, self.driver = None, None
            return
        if self.section == "main":
            self._main(number, text)
        elif self.section == "acl":
            self._acl(number, text)
        elif self.section in _DRIVER_SECTIONS:
            self._driver(number, text)

    def _directive(self, number: int, text: str) -> None:
        word, _, arg = text.partition(" ")
        arg = arg.strip()
        if word in (".ifdef", ".ifndef"):
            defined = arg in self.macros
            self.skip.append(not defined if word == ".ifdef" else defined)
        elif word == ".elifdef" and self.skip:
            self.skip[-1] = not (self.skip[-1] and arg in self.macros)
        elif word == ".else" and self.skip:
            self.skip[-1] = not self.skip[-1]
        elif word == ".endif" and self.skip:
            self.skip.pop()
        elif word.startswith(".include") and not any(self.skip):
            self.cfg.warnings.append(f"{self.cfg.file}:{number}: {word} {arg} not followed")

    def _main(self, number: int, text: str) -> None:
        name, sep, value = text.partition("=")
        name = name.strip()
        if sep and name[:1].isupper() and " " not in name:
            self.macros[name.rstrip("=")] = value.strip().lstrip("=").strip()
            return
        words = name.split()
        if words and words[0] == "hide":
            words = words[1:]
        if sep and len(words) == 2 and words[0] in LIST_KINDS:
            self.cfg.lists[words[1]] = (words[0], Option(words[1], value.strip(), number, text))
        elif sep and len(words) == 1:
            self.cfg.options[words[0]] = Option(words[0], value.strip(), number, text)
        elif not sep and len(words) == 1:
            word = words[0]
            for prefix in ("no_", "not_"):
                if word.startswith(prefix):
                    bare = word[len(prefix) :]
                    self.cfg.options[bare] = Option(bare, "false", number, text)
                    return
            self.cfg.options[word] = Option(word, "true", number, text)

    def _acl(self, number: int, text: str) -> None:
        if text.endswith(":") and " " not in text:
            self.acl = self.cfg.acls.setdefault(text[:-1], [])
            return
        if self.acl is None:
            return
        verb, _, rest = text.partition(" ")
        if verb.lower() in ACL_VERBS:
            statement = AclStatement(verb.lower(), number, text)
            self.acl.append(statement)
            if "=" in rest:
                self._condition(rest)
            return
        if self.acl and "=" in text:
            self._condition(text)

    def _condition(self, text: str) -> None:
        assert self.acl
        name, _, value = text.partition("=")
        last = self.acl[-1]
        item = (name.strip().replace(" ", ""), value.strip())
        self.acl[-1] = AclStatement(last.verb, last.line, last.source, (*last.conditions, item))

    def _driver(self, number: int, text: str) -> None:
        if text.endswith(":") and " " not in text:
            self.driver = Driver(text[:-1], number)
            self.cfg.drivers.setdefault(self.section, []).append(self.driver)
            return
        if self.driver is None:
            return
        name, sep, value = text.partition("=")
        name = name.strip()
        if sep:
            self.driver.options[name] = Option(name, value.strip(), number, text)
        else:
            self.driver.options[name] = Option(name, "true", number, text)


def parse_exim(text: str, file: str = "exim.conf") -> EximConfig:
    parser = _Parser(file)
    for number, line in _logical(text):
        parser.feed(number, line)
    return parser.cfg


# Main-section option names start with one of these (Exim spec, chapter "Main configuration").
_OPTION_PREFIXES = (
    "accept_", "acl_", "add_environment", "admin_groups", "allow_", "auth_", "av_scanner",
    "bi_command", "bounce_", "callout_", "check_", "chunking_", "daemon_", "delay_", "deliver_",
    "disable_ipv6", "dkim_", "dmarc_", "dns_", "dsn_", "errors_", "event_", "exim_", "extract_",
    "finduser_", "freeze_", "gecos_", "gnutls_", "headers_", "helo_", "hold_domains",
    "host_", "hosts_", "ignore_", "keep_", "ldap_", "local_", "localhost_", "log_", "lookup_",
    "max_", "message_", "mua_", "mysql_", "never_users", "openssl_", "panic_", "percent_hack",
    "pgsql_", "pid_file", "pipelining_", "prdr_", "preserve_", "primary_hostname", "print_",
    "process_", "prod_", "qualify_", "queue_", "received_", "receive_", "recipient",
    "remote_", "retry_", "return_", "rfc1413_", "sender_", "smtp_", "spamd_", "split_spool",
    "spool_", "strict_", "strip_", "syslog_", "system_filter", "tcp_", "timeout_", "timezone",
    "tls_", "trusted_", "unknown_", "untrusted_", "uucp_", "warn_", "write_rejectlog",
)  # fmt: skip


def not_exim_reason(text: str, cfg: EximConfig) -> str | None:
    """Why ``text`` is not an Exim configuration, or None when it looks like one.

    An option-less file is valid to Exim (all defaults), but auditing a wrong path (a binary,
    /etc/passwd, an empty file) must not come out clean.
    """
    if "\0" in text:
        return "binary content (NUL bytes)"
    if text.count("\ufffd") * 100 > len(text) + 100:
        return "binary content (not text)"
    if not text.strip():
        return "empty file"
    if cfg.sections or cfg.lists or cfg.acls:
        return None
    if any(name.startswith(_OPTION_PREFIXES) for name in cfg.options):
        return None
    return "no Exim option, named list, ACL or 'begin' section found"


def split_exim_list(value: str) -> list[str]:
    """An Exim list: ``:`` separated (``::`` is a literal colon), or ``<c`` picks ``c``."""
    value = value.strip()
    if value.startswith("<") and len(value) > 1 and not value[1].isalnum():
        sep, body = value[1], value[2:]
        return [item.strip() for item in body.split(sep) if item.strip()]
    items: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == ":":
            if value[i : i + 2] == "::":
                current.append(":")
                i += 2
                continue
            items.append("".join(current).strip())
            current = []
        else:
            current.append(value[i])
        i += 1
    items.append("".join(current).strip())
    return [item for item in items if item]
