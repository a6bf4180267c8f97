"""main.cf / master.cf / postconf output parsing, expansion and lists, as Postfix does them."""

from __future__ import annotations

import pytest

from relayguard.audit._errors import ConfigSyntaxError
from relayguard.audit.expand import expand, split_list
from relayguard.audit.maincf import parse_main_cf
from relayguard.audit.mastercf import parse_master_cf
from relayguard.audit.postconf_io import merge_overrides, parse_postconf_p


@pytest.mark.parametrize(
    ("text", "name", "value", "line"),
    [
        ("a = 1\n", "a", "1", 1),
        ("a=1", "a", "1", 1),
        ("a   =   spaced value   \n", "a", "spaced value", 1),
        # continuation lines start with whitespace
        ("a = x,\n  y,\n\tz\n", "a", "x, y, z", 1),
        # a comment inside a continued value is skipped, the value goes on
        ("a = x,\n# note\n  y\n", "a", "x, y", 1),
        # blank lines too
        ("a = x,\n\n  y\n", "a", "x, y", 1),
        # '#' after the start of a line is part of the value
        ("a = x # not a comment\n", "a", "x # not a comment", 1),
        # last definition wins
        ("a = 1\nb = 2\na = 3\n", "a", "3", 3),
        ("  # indented comment\na = 1\n", "a", "1", 2),
        ("a =\n", "a", "", 1),
        ("mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128\n", "mynetworks",
         "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128", 1),
    ],
)  # fmt: skip
def test_main_cf_values(text: str, name: str, value: str, line: int) -> None:
    param = parse_main_cf(text).params[name]
    assert (param.value, param.line) == (value, line)


def test_main_cf_keeps_overridden_and_warns_on_leading_whitespace() -> None:
    main = parse_main_cf("  stray = 1\na = 1\na = 2\n", "x/main.cf")
    assert [(p.value, p.line) for p in main.overridden] == [("1", 2)]
    assert main.params["a"].where == "x/main.cf:3"
    assert main.warnings == ("x/main.cf, line 1: ignored: starts with whitespace",)
    assert "stray" not in main.params


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("no equals sign\n", "main.cf, line 1: missing '=' after attribute name"),
        ("a = 1\n= 2\n", "main.cf, line 2: missing '=' after attribute name"),
        ("bad name = 1\n", "main.cf, line 1: missing '=' after attribute name"),
    ],
)
def test_main_cf_errors(text: str, error: str) -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_main_cf(text)
    assert str(caught.value) == error


PARAMS = {
    "myhostname": "mail.example.org",
    "mydomain": "example.org",
    "mydestination": "$myhostname, localhost.$mydomain",
    "empty": "",
    "mua": "permit_sasl_authenticated, reject",
    "loop_a": "$loop_b",
    "loop_b": "$loop_a",
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$myhostname", "mail.example.org"),
        ("${myhostname}", "mail.example.org"),
        ("$(myhostname)", "mail.example.org"),
        ("x$myhostname.y", "xmail.example.org.y"),
        ("$mydestination", "mail.example.org, localhost.example.org"),  # recursive
        ("$undefined", ""),
        ("cost $$5", "cost $5"),
        ("${myhostname?set}", "set"),
        ("${empty?set}", ""),
        ("${empty:fallback}", "fallback"),
        ("${myhostname:fallback}", ""),
        ("${myhostname?{yes}:{no}}", "yes"),
        ("${empty?{yes}:{no}}", "no"),
        ("${mydomain?{$mua}}", "permit_sasl_authenticated, reject"),
        ("${{$mydomain} == {example.org}?{same}:{other}}", "same"),
        ("${{$mydomain} != {example.org}?{same}:{other}}", "other"),
        ("$loop_a", "$loop_a"),  # a loop stops at the depth limit, left as written
        ("${unbalanced", "${unbalanced"),
        ("trailing $", "trailing $"),
    ],
)
def test_expand(value: str, expected: str) -> None:
    result = expand(value, PARAMS.get)
    if value == "$loop_a":
        assert result in ("$loop_a", "$loop_b")
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a, b c,\td", ["a", "b", "c", "d"]),
        ("a,,b", ["a", "b"]),
        ("", []),
        ("check_client_access inline:{ 1.2.3.4=OK, 5.6.7.8=OK }, reject",
         ["check_client_access", "inline:{ 1.2.3.4=OK, 5.6.7.8=OK }", "reject"]),
        ("127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
         ["127.0.0.0/8", "[::ffff:127.0.0.0]/104", "[::1]/128"]),
    ],
)  # fmt: skip
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items


MASTER = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       y       -       -       smtpd
  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
#  -o smtpd_tls_security_level=encrypt
  -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }
  -osmtpd_sasl_auth_enable=yes -o smtpd_relay_restrictions=
127.0.0.1:2525 inet n - n - - smtpd
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=postfix/$service_name
maildrop  unix  -       n       n       -       -       pipe
  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}
smtp      inet  n       -       y       -       1       postscreen
"""


def test_master_cf_services_and_overrides() -> None:
    master = parse_master_cf(MASTER, "master.cf")
    assert [s.key for s in master.services] == [
        "submission/inet", "127.0.0.1:2525/inet", "relay/unix", "maildrop/unix", "smtp/inet",
    ]  # fmt: skip
    sub = master.services[0]
    assert {n: (o.value, o.line) for n, o in sub.overrides.items()} == {
        "syslog_name": ("postfix/submission", 5),
        "smtpd_recipient_restrictions": ("permit_sasl_authenticated, reject", 7),
        "smtpd_sasl_auth_enable": ("yes", 8),
        "smtpd_relay_restrictions": ("", 8),
    }
    assert sub.overrides["smtpd_relay_restrictions"].source == (
        "-osmtpd_sasl_auth_enable=yes -o smtpd_relay_restrictions="
    )
    # the later smtp/inet (postscreen) replaced the first one
    assert master.services[-1].command == "postscreen"
    assert master.warnings == ("master.cf, line 14: duplicate smtp/inet replaces line 2",)
    assert master.services[3].args == ("flags=DRXhu", "user=vmail", "argv=/usr/bin/maildrop",
                                       "-d", "${recipient}")  # fmt: skip


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("smtp inet n - y - - \n", "master.cf, line 1: bad field count (want 8 fields)"),
        ("smtp tcp n - y - - smtpd\n", "master.cf, line 1: unknown service type 'tcp'"),
        ("smtp inet n - y - - smtpd\n  -o novalue\n",
         "master.cf, line 2: missing '=' in -o 'novalue'"),
    ],
)  # fmt: skip
def test_master_cf_errors(text: str, error: str) -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_master_cf(text)
    assert str(caught.value) == error


POSTCONF_M = (
    "smtp       inet  n       -       y       -       -       smtpd\n"
    "submission inet  n       -       y       -       -       smtpd -o syslog_name=postfix/"
    "submission -o smtpd_relay_restrictions= -o smtpd_recipient_restrictions=permit_sasl_"
    "authenticated,reject\n"
)
POSTCONF_P = (
    "submission/inet/smtpd_recipient_restrictions = permit_sasl_authenticated,permit\n"
    "submission/inet/smtpd_relay_restrictions =\n"
    "127.0.0.1:2587/inet/syslog_name = postfix/other\n"
)


def test_postconf_m_and_p() -> None:
    master = parse_master_cf(POSTCONF_M, "m.txt")
    assert master.services[1].overrides["smtpd_recipient_restrictions"].value == (
        "permit_sasl_authenticated,reject"
    )
    extra = parse_postconf_p(POSTCONF_P, "p.txt")
    assert sorted(extra) == [("127.0.0.1:2587", "inet"), ("submission", "inet")]
    merged, warnings = merge_overrides(master, extra)
    rcpt = merged.services[1].overrides["smtpd_recipient_restrictions"]
    assert (rcpt.value, rcpt.where) == ("permit_sasl_authenticated,permit", "p.txt:1")
    assert merged.services[1].overrides["smtpd_relay_restrictions"].value == ""
    assert warnings == ["postconf -P names 127.0.0.1:2587/inet, absent from postconf -M"]


def test_postconf_p_errors() -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_postconf_p("smtpd_relay_restrictions = x\n", "p.txt")
    assert str(caught.value) == "p.txt, line 1: want service/type/parameter = value"


def test_master_cf_stray_arguments_of_smtpd() -> None:
    text = (
        "smtp inet n - y - - smtpd -v -n name -o a=b c d\n"
        "local unix - n n - - local x\n"
        "2525 inet n - y - - smtpd -o { e = f g }\n"
    )
    smtp, local, alt = parse_master_cf(text, "master.cf").services
    assert [(s.token, s.line, s.after) for s in smtp.stray] == [
        ("c", 1, "-o a=b"), ("d", 1, "-o a=b"),
    ]  # fmt: skip
    assert (local.stray, alt.stray, alt.overrides["e"].value) == ((), (), "f g")
