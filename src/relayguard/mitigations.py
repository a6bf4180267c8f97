"""The catalogue of fixes that findings point to, each with commands an admin can paste.

A finding names mitigations by id (``Finding.mitigations``); renderers look them up here.
Ids are a public interface (JSON ``mitigations[].id``): add, never rename.

Each step in ``postfix`` / ``exim`` is one thing to run or paste: a shell command, or a
configuration snippet whose first line is a ``#`` comment saying where it goes. Placeholders
are written ``<user>``, ``<ip>``, ``<queue_id>``, ``<message_id>``, ``<sender>``, ``<domain>``,
``<mx_host>``, ``<lan_cidr>`` and ``<map>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relayguard.findings import Finding


@dataclass(frozen=True, slots=True)
class Mitigation:
    id: str
    title: str
    why: str
    postfix: tuple[str, ...]
    exim: tuple[str, ...]


# The address ``relayguard policy serve`` listens on unless configured otherwise.
POLICY_ADDRESS = "127.0.0.1:10040"

_ENTRIES: tuple[Mitigation, ...] = (
    Mitigation(
        id="reset-password",
        title="Reset the account's password and end its sessions",
        why=(
            "A spammer who knows the password keeps sending until it changes. Also revoke app "
            "passwords and API tokens of the account in your admin panel, and look for forwarding "
            "or auto-redirect rules the attacker may have added to harvest replies."
        ),
        postfix=(
            "# Cyrus sasldb: set a new password (login <user>@<domain>)\n"
            "saslpasswd2 -c -u <domain> <user>",
            "# Dovecot SASL: make a new hash for the passwd-file / SQL user entry\n"
            "doveadm pw -s SHA512-CRYPT",
            "doveadm kick <user>",
            "postmap -q '<user>@<domain>' hash:/etc/postfix/virtual",
            "doveadm sieve list -u <user>",
        ),
        exim=(
            "# Dovecot authenticator: make a new hash for the passwd-file / SQL user entry\n"
            "doveadm pw -s SHA512-CRYPT",
            "doveadm kick <user>",
            "# shows where mail for the account is routed (a forward shows up here)\n"
            "exim -bt <user>@<domain>",
            "doveadm sieve list -u <user>",
        ),
    ),
    Mitigation(
        id="hold-queued-mail",
        title="Hold the mail the account or IP has already queued",
        why=(
            "Changing the password does not stop messages already in the queue. Put them on hold "
            "(nothing is lost: review them, then release or delete), and hold new mail from the "
            "login until it is secured."
        ),
        postfix=(
            "postqueue -j | jq -r 'select(.sender == \"<sender>\") | .queue_id' | postsuper -h -",
            "# every queue id the login submitted, taken from the log\n"
            "sed -nE 's/.* ([0-9A-Za-z]+): client=.*sasl_username=<user>(,.*)?$/\\1/p' "
            "/var/log/mail.log | sort -u | postsuper -h -",
            "postsuper -h <queue_id>",
            "# hold new mail from the login until it is secured\n"
            "echo '<user> HOLD' >> /etc/postfix/sasl_access && postmap /etc/postfix/sasl_access\n"
            'postconf -e "smtpd_sender_restrictions = check_sasl_access '
            'hash:/etc/postfix/sasl_access, $(postconf -h smtpd_sender_restrictions)"\n'
            "postfix reload",
            "# after review: release a held message\npostsuper -H <queue_id>",
        ),
        exim=(
            "exiqgrep -i -f '<sender>' | xargs -r exim -Mf",
            "exim -Mf <message_id>",
            "# freeze new mail from the login until it is secured (acl_smtp_rcpt)\n"
            "warn    authenticated = *\n"
            "        condition     = ${if eqi{$authenticated_id}{<user>}}\n"
            "        control       = freeze/no_tell",
            "# after review: thaw a frozen message\nexim -Mt <message_id>",
        ),
    ),
    Mitigation(
        id="review-account-logins",
        title="Review where the account logged in from",
        why=(
            "Logins from unknown countries or many IPs in a short time confirm the account is "
            "stolen; the list of IPs is what you ban and what you tell the account owner."
        ),
        postfix=(
            "grep -E 'sasl_username=<user>(,|$)' /var/log/mail.log "
            "| grep -oE 'client=[^,]+' | sort | uniq -c | sort -rn",
            "grep -F 'user=<<user>>' /var/log/mail.log "
            "| grep -oE 'rip=[0-9a-fA-F.:]+' | sort | uniq -c | sort -rn",
        ),
        exim=(
            "grep -E ' A=[^ ]+:<user>( |$)' /var/log/exim4/mainlog "
            "| grep -oE '\\[[0-9a-fA-F.:]+\\]' | sort | uniq -c | sort -rn",
            "grep -F 'user=<<user>>' /var/log/mail.log "
            "| grep -oE 'rip=[0-9a-fA-F.:]+' | sort | uniq -c | sort -rn",
        ),
    ),
    Mitigation(
        id="sender-login-maps",
        title="Let each login send only as its own addresses",
        why=(
            "Without it any authenticated account (or a stolen one) can send as any sender, "
            "which makes spam from a compromised account look like it comes from someone else."
        ),
        postfix=(
            "# /etc/postfix/sender_login: one line per address: <sender> <user>\n"
            "postmap /etc/postfix/sender_login",
            "postconf -e 'smtpd_sender_login_maps = hash:/etc/postfix/sender_login'",
            'postconf -e "smtpd_sender_restrictions = reject_sender_login_mismatch, '
            '$(postconf -h smtpd_sender_restrictions)"',
            "postfix reload",
        ),
        exim=(
            "# in acl_smtp_mail (or the RCPT ACL), before any accept\n"
            "deny    authenticated = *\n"
            "        !condition    = ${if eqi{$authenticated_id}{$sender_address}}\n"
            "        message       = sender $sender_address is not owned by $authenticated_id",
            "exim -bV",
        ),
    ),
    Mitigation(
        id="rate-limit-outbound",
        title="Limit how much each login and client may send",
        why=(
            "A rate limit caps the damage of the next stolen password: the spam run is deferred "
            "after a few hundred recipients instead of tens of thousands. anvil limits are per "
            "client IP only (and skip $mynetworks); the relayguard policy service counts per "
            "SASL login, sender and IP."
        ),
        postfix=(
            "relayguard policy serve",
            "postconf -e 'smtpd_data_restrictions = reject_unauth_pipelining, "
            f"check_policy_service {{ inet:{POLICY_ADDRESS}, timeout=5s, default_action=DUNNO }}'",
            "postconf -e 'smtpd_client_message_rate_limit = 100' "
            "'smtpd_client_recipient_rate_limit = 300' 'anvil_rate_time_unit = 60s'",
            "postfix reload",
        ),
        exim=(
            "# in acl_smtp_rcpt, before the accept for authenticated senders\n"
            "defer   authenticated = *\n"
            "        ratelimit     = 300 / 1h / per_rcpt / $authenticated_id\n"
            "        message       = sending rate limit reached, try again later",
            "# per client IP for everyone else (acl_smtp_rcpt)\n"
            "defer   !authenticated = *\n"
            "        ratelimit     = 300 / 1h / per_rcpt / $sender_host_address\n"
            "        message       = sending rate limit reached, try again later",
        ),
    ),
    Mitigation(
        id="limit-auth-attempts",
        title="Slow down and ban password guessing",
        why=(
            "Brute force needs thousands of attempts; limiting AUTH per IP and banning repeat "
            "offenders makes guessing impractical and keeps the log readable."
        ),
        postfix=(
            "postconf -e 'smtpd_client_auth_rate_limit = 10' 'anvil_rate_time_unit = 60s'",
            "postfix reload",
            "printf '[postfix-sasl]\\nenabled = true\\nmaxretry = 5\\nfindtime = 10m\\n"
            "bantime = 1h\\n' > /etc/fail2ban/jail.d/postfix-sasl.local",
            "fail2ban-client reload && fail2ban-client status postfix-sasl",
        ),
        exim=(
            "# main section\n"
            "acl_smtp_connect = acl_check_connect\n"
            "acl_smtp_quit    = acl_check_quit\n"
            "acl_smtp_notquit = acl_check_notquit",
            "# ACL section: drop hosts with more than 10 failed logins in an hour\n"
            "acl_check_connect:\n"
            "  drop    ratelimit = 10 / 1h / per_conn / noupdate / authfail:$sender_host_address\n"
            "          message   = too many failed logins\n"
            "  accept\n"
            "acl_check_quit:\n"
            "  warn    condition = ${if eq{$authentication_failed}{1}}\n"
            "          ratelimit = 10 / 1h / per_conn / strict / authfail:$sender_host_address\n"
            "  accept\n"
            "acl_check_notquit:\n"
            "  warn    condition = ${if eq{$authentication_failed}{1}}\n"
            "          ratelimit = 10 / 1h / per_conn / strict / authfail:$sender_host_address\n"
            "  accept",
            "printf '[exim]\\nenabled = true\\nmaxretry = 5\\n' > /etc/fail2ban/jail.d/exim.local",
            "fail2ban-client reload && fail2ban-client status exim",
        ),
    ),
    Mitigation(
        id="ban-ip",
        title="Block the attacking IP",
        why=(
            "Stops further logins and relay attempts from that address while you fix the cause. "
            "Ban at the firewall for all ports, or at the MTA for SMTP only."
        ),
        postfix=(
            "relayguard firewall ban <ip> --apply",
            "fail2ban-client set postfix-sasl banip <ip>",
            "echo '<ip> REJECT' >> /etc/postfix/client_access.cidr",
            'postconf -e "smtpd_client_restrictions = check_client_access '
            'cidr:/etc/postfix/client_access.cidr, $(postconf -h smtpd_client_restrictions)"',
            "postfix reload",
        ),
        exim=(
            "relayguard firewall ban <ip> --apply",
            "echo '<ip>' >> /etc/exim4/blocked_hosts",
            "# first statement of acl_smtp_connect\n"
            "drop    hosts   = /etc/exim4/blocked_hosts\n"
            "        message = blocked",
        ),
    ),
    Mitigation(
        id="close-open-relay",
        title="Close the open relay",
        why=(
            "An open relay forwards anybody's mail to anywhere; it is found by scanners within "
            "hours and gets the server block-listed. Only local networks and authenticated users "
            "may relay; everything else may only deliver to your own domains."
        ),
        postfix=(
            "postconf -n smtpd_relay_restrictions smtpd_recipient_restrictions mynetworks "
            "relay_domains",
            "postconf -P | grep -E 'restrictions|mynetworks'",
            "postconf -e 'smtpd_relay_restrictions = permit_mynetworks, "
            "permit_sasl_authenticated, defer_unauth_destination'",
            "postfix reload",
        ),
        exim=(
            "exim -bP acl_smtp_rcpt",
            "exim -bP hostlist relay_from_hosts",
            "# in the RCPT ACL: nobody else may relay\n"
            "accept  hosts         = +relay_from_hosts\n"
            "accept  authenticated = *\n"
            "require message       = relay not permitted\n"
            "        domains       = +local_domains : +relay_to_domains",
            "exim -bh <ip>",
        ),
    ),
    Mitigation(
        id="narrow-mynetworks",
        title="Trust only loopback and your real LAN",
        why=(
            "Every address in mynetworks / relay_from_hosts may relay without a password. "
            "Container bridges, whole private ranges or a proxy's address there open the relay "
            "to the Internet."
        ),
        postfix=(
            "postconf mynetworks mynetworks_style",
            "postconf -e 'mynetworks = 127.0.0.0/8 [::1]/128 <lan_cidr>'",
            "postfix reload",
        ),
        exim=(
            "exim -bP hostlist relay_from_hosts",
            "# main section\nhostlist relay_from_hosts = <; 127.0.0.1 ; ::1 ; <lan_cidr>",
        ),
    ),
    Mitigation(
        id="remove-access-ok",
        title="Remove access-map entries that authorise relaying",
        why=(
            "An OK (or permit) result from check_client_access, check_helo_access, "
            "check_sender_access or check_recipient_access placed before the relay check lets "
            "the matching client relay anywhere."
        ),
        postfix=(
            "postconf -n | grep -E 'check_(client|helo|sender|recipient)_access'",
            "grep -inE '[[:space:]](ok|permit[a-z_]*|[0-9]+)[[:space:]]*$' /etc/postfix/<map>",
            "# delete those lines, then rebuild the map\npostmap /etc/postfix/<map>",
            "postfix reload",
        ),
        exim=(
            "exim -bP acl_smtp_rcpt",
            "# remove accept statements with hosts/senders/domains conditions that come before\n"
            "# 'require domains = +local_domains : +relay_to_domains', then check:\n"
            "exim -bV",
            "exim -bh <ip>",
        ),
    ),
    Mitigation(
        id="test-relay",
        title="Check from outside that the relay is closed",
        why=(
            "Only a test from an address outside your trusted networks proves the fix: from "
            "inside mynetworks every relay test succeeds."
        ),
        postfix=("relayguard probe <mx_host>",),
        exim=(
            "relayguard probe <mx_host>",
            "# simulate an SMTP session from an outside address (nothing is delivered)\n"
            "exim -bh 192.0.2.1",
        ),
    ),
    Mitigation(
        id="stop-backscatter",
        title="Reject unknown recipients during SMTP, never accept and bounce",
        why=(
            "Accepting mail for users that do not exist and bouncing it later sends the bounce to "
            "the forged sender: your server then spams innocent third parties (backscatter)."
        ),
        postfix=(
            "postconf smtpd_reject_unlisted_recipient local_recipient_maps "
            "virtual_mailbox_maps relay_recipient_maps luser_relay",
            "postconf -e 'smtpd_reject_unlisted_recipient = yes' "
            "'local_recipient_maps = proxy:unix:passwd.byname $alias_maps'",
            "# relayed domains need a list of valid recipients\n"
            "postconf -e 'relay_recipient_maps = hash:/etc/postfix/relay_recipients' "
            "&& postmap /etc/postfix/relay_recipients",
            "postfix reload",
        ),
        exim=(
            "# in the RCPT ACL, for your own and relayed domains\nrequire verify = recipient",
            "exim -bV",
        ),
    ),
    Mitigation(
        id="inspect-deferred-queue",
        title="Find out what is stuck in the queue and why",
        why=(
            "A growing deferred queue means remote servers refuse or throttle your mail (often "
            "because it is spam) or the next hop is down; the shape tells which."
        ),
        postfix=(
            "qshape deferred",
            "qshape -s deferred",
            "postqueue -j | jq -r '.recipients[].delay_reason' | sort | uniq -c | sort -rn | head",
            "postqueue -p | tail -n 1",
            "postcat -q <queue_id>",
            "# once the next hop works again\npostqueue -f",
        ),
        exim=(
            "exim -bpc",
            "exim -bp | exiqsumm",
            "exim -Mvh <message_id>",
            "exim -bt <recipient>",
            "# once the next hop works again\nexim -qf",
        ),
    ),
    Mitigation(
        id="purge-spam-queue",
        title="Delete the queued spam, after review",
        why=(
            "Spam left in the queue keeps being retried and keeps you on block lists. Delete by "
            "queue id after looking at a few messages; never delete the whole queue blindly, "
            "real mail waits there too."
        ),
        postfix=(
            "postqueue -j | jq -r 'select(.sender == \"<sender>\") | .queue_id' > /root/spam-ids",
            "postcat -q <queue_id> | less",
            "postsuper -d - < /root/spam-ids",
        ),
        exim=(
            "exiqgrep -i -f '<sender>' > /root/spam-ids",
            "exim -Mvh <message_id>",
            "xargs -r exim -Mrm < /root/spam-ids",
        ),
    ),
    Mitigation(
        id="check-blocklists",
        title="Check whether the server's IP is block-listed",
        why=(
            "Remote servers reject or junk mail from listed IPs; after abuse, listing is likely "
            "and it affects every user of the server."
        ),
        postfix=("relayguard dnsbl <ip>",),
        exim=("relayguard dnsbl <ip>",),
    ),
    Mitigation(
        id="request-delisting",
        title="Request delisting, after the cause is fixed",
        why=(
            "Lists relist quickly if spam continues, so fix the cause and empty the queue first. "
            "Spamhaus: https://check.spamhaus.org/ ; Barracuda: "
            "https://www.barracudacentral.org/rbl/removal-request ; SpamCop (expires by itself "
            "about a day after the last report): https://www.spamcop.net/bl.shtml"
        ),
        postfix=(
            "# the queue holds no more spam\nqshape -s deferred",
            "relayguard dnsbl <ip>",
        ),
        exim=(
            "# the queue holds no more spam\nexim -bp | exiqsumm",
            "relayguard dnsbl <ip>",
        ),
    ),
    Mitigation(
        id="block-relay-probers",
        title="Turn relay probers away early",
        why=(
            "Hosts that try to relay are scanning for open relays; turning them away before the "
            "SMTP dialogue saves resources and keeps them from finding a weakness later."
        ),
        postfix=(
            "printf '[postfix]\\nenabled = true\\nmode = aggressive\\n' "
            "> /etc/fail2ban/jail.d/postfix.local && fail2ban-client reload",
            "# master.cf: put postscreen in front of smtpd on port 25\n"
            "postconf -M smtp/inet='smtp inet n - y - 1 postscreen' "
            "smtpd/pass='smtpd pass - - y - - smtpd' "
            "dnsblog/unix='dnsblog unix - - y - 0 dnsblog' "
            "tlsproxy/unix='tlsproxy unix - - y - 0 tlsproxy'",
            "postconf -e 'postscreen_greet_action = enforce' "
            "'postscreen_dnsbl_action = enforce' 'postscreen_dnsbl_sites = zen.spamhaus.org*2'",
            'postconf -e "smtpd_client_restrictions = check_client_access '
            'cidr:/etc/postfix/client_access.cidr, $(postconf -h smtpd_client_restrictions)"',
            "postfix reload",
        ),
        exim=(
            "printf '[exim]\\nenabled = true\\n' > /etc/fail2ban/jail.d/exim.local "
            "&& fail2ban-client reload",
            "# main section: fewer parallel sessions per host\nsmtp_accept_max_per_host = 5",
            "# in acl_smtp_connect\n"
            "drop    dnslists = zen.spamhaus.org\n"
            "        message  = $sender_host_address is listed at $dnslist_domain",
        ),
    ),
    Mitigation(
        id="require-auth-submission",
        title="Require TLS and authentication on the submission port",
        why=(
            "Users' mail clients should send through port 587/465 with a password over TLS; a "
            "submission service that accepts mail without both is an open door."
        ),
        postfix=(
            "postconf -M submission/inet='submission inet n - y - - smtpd'",
            "postconf -P 'submission/inet/syslog_name=postfix/submission' "
            "'submission/inet/smtpd_tls_security_level=encrypt' "
            "'submission/inet/smtpd_sasl_auth_enable=yes' "
            "'submission/inet/smtpd_client_restrictions=permit_sasl_authenticated,reject' "
            "'submission/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject'",
            "postconf -e 'smtpd_tls_auth_only = yes'",
            "postfix reload",
        ),
        exim=(
            "# main section\n"
            "daemon_smtp_ports = 25 : 587\n"
            "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}",
            "# first statements of the RCPT ACL\n"
            "deny    condition      = ${if eq{$received_port}{587}}\n"
            "        !authenticated = *\n"
            "        message        = authentication required",
        ),
    ),
    Mitigation(
        id="publish-spf-dkim-dmarc",
        title="Publish SPF, DKIM and DMARC for your domains",
        why=(
            "They let receivers tell your real mail from forgeries, so spam forged in your name "
            "is rejected elsewhere and bounces (backscatter) stop coming back to you."
        ),
        postfix=(
            "relayguard domain <domain>",
            "# DKIM signing through an OpenDKIM milter\n"
            "postconf -e 'smtpd_milters = inet:127.0.0.1:8891' "
            "'non_smtpd_milters = $smtpd_milters'",
        ),
        exim=(
            "relayguard domain <domain>",
            "# on the remote_smtp transport\n"
            "dkim_domain      = <domain>\n"
            "dkim_selector    = mail\n"
            "dkim_private_key = /etc/exim4/dkim/<domain>.key",
        ),
    ),
)

CATALOGUE: dict[str, Mitigation] = {m.id: m for m in _ENTRIES}


def get(mitigation_id: str) -> Mitigation | None:
    """The catalogue entry for an id, or None when a finding names an unknown id."""
    return CATALOGUE.get(mitigation_id)


def used_by(findings: Iterable[Finding]) -> list[str]:
    """Mitigation ids named by ``findings``, each once, in order of first use."""
    seen: dict[str, None] = {}
    for finding in findings:
        for mid in finding.mitigations:
            seen.setdefault(mid, None)
    return list(seen)
