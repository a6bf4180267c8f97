"""The lab instance's configuration as text: main.cf, master.cf, aliases, SASL, per mode.

Pure functions of a :class:`Layout` (paths and ports); writing files and running Postfix is
``postfix.py``'s job. The relay policies are the misconfigurations relayguard must recognise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOMAIN = "lab.test"
HOSTNAME = f"mail.{DOMAIN}"
USERS = {f"alice@{DOMAIN}": "S3cret-pass", f"bob@{DOMAIN}": "Bob-pass-42"}
# Aliases are the local recipients; no Unix accounts are needed.
MAILBOXES = ("root", "alice", "bob")
# An address the tests treat as "the tester's own machine" in the trusted-source mode.
TESTER_ADDRESS = "127.0.0.77"

CLOSED_RELAY = "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
SUBMISSION_OK = "permit_sasl_authenticated, reject"
# The submission trap: an edited override whose final reject is never reached by an
# unauthenticated client. Postfix 3.7 refuses the literal forms of that mistake (a list with
# no reject: "specify at least one working instance of"; "permit, reject": "restriction
# `reject' after `permit' is ignored"), and smtpd then dies at start-up. A lookup that
# answers OK for every client is what it does run, and relays for anyone on this port.
SUBMISSION_BROKEN = "permit_sasl_authenticated, check_client_access static:OK, reject"

MODES = ("closed", "open-mynetworks", "open-access-ok", "submission-broken", "trusted-source")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one lab instance lives and listens."""

    root: Path
    smtp_port: int
    submission_port: int
    sink_port: int

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def maillog(self) -> Path:
        return self.root / "log" / "maillog"

    @property
    def sasl(self) -> Path:
        return self.etc / "sasl"

    @property
    def client_access(self) -> Path:
        return self.etc / "client_access.cidr"


@dataclass(frozen=True, slots=True)
class Mode:
    """One relay policy: main.cf values, the submission relay list, the client access map."""

    mynetworks: str = "127.0.0.1/32"
    relay_restrictions: str = CLOSED_RELAY
    submission_restrictions: str = SUBMISSION_OK
    client_access: str = ""


def mode(name: str, *, access_client: str = "0.0.0.0/0", tester: str = TESTER_ADDRESS) -> Mode:
    """The settings of a named mode; ValueError for an unknown name."""
    if name == "closed":
        return Mode()
    if name == "open-mynetworks":
        return Mode(mynetworks="0.0.0.0/0")
    if name == "open-access-ok":
        return Mode(
            relay_restrictions="permit_mynetworks, permit_sasl_authenticated,"
            " check_client_access cidr:$config_directory/client_access.cidr,"
            " reject_unauth_destination",
            client_access=f"{access_client} OK\n",
        )
    if name == "submission-broken":
        return Mode(submission_restrictions=SUBMISSION_BROKEN)
    if name == "trusted-source":
        return Mode(mynetworks=f"127.0.0.1/32, {tester}/32")
    raise ValueError(f"unknown lab mode {name!r}; known: {', '.join(MODES)}")


def main_cf(layout: Layout, active: Mode, extra: dict[str, str] | None = None) -> str:
    """main.cf for the instance in ``active`` mode; ``extra`` adds or overrides parameters."""
    params: dict[str, str] = {
        "compatibility_level": "3.6",
        "queue_directory": str(layout.spool),
        "data_directory": str(layout.data),
        "myhostname": HOSTNAME,
        "mydomain": DOMAIN,
        "myorigin": "$mydomain",
        "mydestination": "$myhostname, $mydomain, localhost",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "smtpd_banner": "$myhostname ESMTP lab",
        "biff": "no",
        "append_dot_mydomain": "no",
        # postlogd writes the log itself: no syslog, no systemd
        "maillog_file": str(layout.maillog),
        "maillog_file_prefixes": str(layout.root),
        # loopback aliases have no PTR records; keep DNS out entirely
        "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled",
        "relayhost": f"[127.0.0.1]:{layout.sink_port}",
        "alias_maps": f"hash:{layout.etc / 'aliases'}",
        "alias_database": f"hash:{layout.etc / 'aliases'}",
        "local_recipient_maps": "$alias_maps",
        "mynetworks": active.mynetworks,
        "smtpd_relay_restrictions": active.relay_restrictions,
        "smtpd_recipient_restrictions": "",
        # Debian's smtpd reads <config_directory>/sasl/smtpd.conf (cyrus_sasl_config_path is
        # ignored); plaintext AUTH is fine on loopback
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "smtpd_sasl_security_options": "noanonymous",
        "smtpd_tls_auth_only": "no",
        "broken_sasl_auth_clients": "yes",
        # tests want mail to move at once, and retries to come quickly
        "in_flow_delay": "0",
        "queue_run_delay": "15s",
        "minimal_backoff_time": "15s",
        "maximal_backoff_time": "60s",
        # a config smtpd refuses makes master throttle the service; reload does not clear it
        "service_throttle_time": "5s",
    }
    params.update(extra or {})
    lines = ["# relayguard mail lab (tests/lab); generated, rewritten on every mode switch"]
    lines += [f"{key} = {value}" for key, value in params.items()]
    return "\n".join(lines) + "\n"


# name, type, private, unpriv, chroot, wakeup, maxproc, command. Chroot is off everywhere: a
# chrooted smtpd could not read the sasldb or the aliases under the lab directory.
_SERVICES = (
    ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
    ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
    ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"),
    ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
    ("error", "unix", "-", "-", "n", "-", "-", "error"),
    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
    ("local", "unix", "-", "n", "n", "-", "-", "local"),
    ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
    ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
    ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
)


def master_cf(layout: Layout, active: Mode) -> str:
    """master.cf written from scratch (a fresh Debian install may have none to copy)."""
    # master.cf's short "-o name=value" form allows no spaces; commas separate just as well
    sub = ",".join(active.submission_restrictions.replace(",", " ").split())
    lines = [
        "# relayguard mail lab (tests/lab); generated",
        f"127.0.0.1:{layout.smtp_port} inet n - n - - smtpd",
        f"127.0.0.1:{layout.submission_port} inet n - n - - smtpd",
        "  -o syslog_name=postfix/submission",
        "  -o smtpd_sasl_auth_enable=yes",
        "  -o smtpd_relay_restrictions=",
        f"  -o smtpd_recipient_restrictions={sub}",
    ]
    lines += [" ".join(service) for service in _SERVICES]
    return "\n".join(lines) + "\n"


def aliases(layout: Layout) -> str:
    lines = ["postmaster: root", "abuse: root"]
    lines += [f"{box}: {layout.mail / box}.mbox" for box in MAILBOXES]
    return "\n".join(lines) + "\n"


def sasl_smtpd_conf(layout: Layout) -> str:
    return (
        "pwcheck_method: auxprop\n"
        "auxprop_plugin: sasldb\n"
        "mech_list: PLAIN LOGIN\n"
        f"sasldb_path: {layout.sasl / 'sasldb2'}\n"
    )
