"""The catalogue of fixes that findings point to, each with commands an admin can paste.

A finding names mitigations by id (``Finding.mitigations``); renderers look them up here.
Ids are a public interface (JSON ``mitigations[].id``): add, never rename.

Each step in ``postfix`` / ``exim`` is one thing to run or paste: a shell command, or a
configuration snippet whose first line is a ``#`` comment saying where it goes. Steps are
templates with the placeholders in :data:`PLACEHOLDERS`; :func:`fill_for` works out the values
an incident's findings pin down, and :func:`actions` returns the steps with those filled in.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from relayguard.findings import Finding


@dataclass(frozen=True, slots=True)
class Mitigation:
    id: str
    title: str
    why: str
    postfix: tuple[str, ...]
    exim: tuple[str, ...]


# anvil(8) counts every smtpd_client_*_rate_limit per anvil_rate_time_unit, one value for all
# of them: the sending and the AUTH limits below share this hourly unit.
ANVIL_TIME_UNIT = "3600s"
HOURLY_MESSAGES = 100
HOURLY_RECIPIENTS = 300
HOURLY_AUTH = 60
HOURLY_CONNECTIONS = 600

# Check the configuration, then make the running Exim read it (Debian's split configuration
# is rebuilt by update-exim4.conf first; elsewhere the reload alone does it).
EXIM_APPLY = (
    "exim -bV\n"
    "update-exim4.conf 2>/dev/null; systemctl reload exim4 2>/dev/null || systemctl reload exim"
)

_FIREWALL_BAN = (
    "# at the firewall, every port (for an IPv6 address: ip6tables)\n"
    "iptables -I INPUT -s <ip> -j DROP"
)
# RFC 5782 lookup: the IPv4 address with its octets reversed, under the list's zone.
_DNSBL_LOOKUP = (
    "# <server_ip> (the public IPv4 address this server sends from) with its octets reversed,\n"
    "# 192.0.2.10 -> 10.2.0.192. No answer: not listed; 127.0.0.2 to 127.0.0.11: listed;\n"
    "# 127.255.255.x: the list refused your resolver (query from a local resolver instead)\n"
    "dig +short <reversed_server_ip>.zen.spamhaus.org\n"
    "dig +short <reversed_server_ip>.bl.spamcop.net"
)
_DNS_AUTH_RECORDS = (
    "# what is published now: SPF, DMARC, and the DKIM key of selector 'mail'\n"
    "dig +short TXT <domain>\n"
    "dig +short TXT _dmarc.<domain>\n"
    "dig +short TXT mail._domainkey.<domain>"
)

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
            "# Cyrus sasldb: set a new password for <login>\n"
            "saslpasswd2 -c -u <domain> <localpart>",
            "# Dovecot SASL: make a new hash for the passwd-file / SQL user entry\n"
            "doveadm pw -s SHA512-CRYPT",
            "doveadm kick <login>",
            "# a forward the attacker may have added shows up here\n"
            "postmap -q '<login>' hash:/etc/postfix/virtual",
            "doveadm sieve list -u <login>",
        ),
        exim=(
            "# Dovecot authenticator: make a new hash for the passwd-file / SQL user entry\n"
            "doveadm pw -s SHA512-CRYPT",
            "doveadm kick <login>",
            "# shows where mail for the account is routed (a forward shows up here)\n"
            "exim -bt <login>",
            "doveadm sieve list -u <login>",
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
            "sed -nE 's/.* ([0-9A-Za-z]+): client=.*sasl_username=<login>(,.*)?$/\\1/p' "
            "/var/log/mail.log | sort -u | postsuper -h -",
            "postsuper -h <queue_id>",
            "# hold new mail from the login until it is secured\n"
            "echo '<login> HOLD' >> /etc/postfix/sasl_access && postmap /etc/postfix/sasl_access\n"
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
            "        condition     = ${if eqi{$authenticated_id}{<login>}}\n"
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
            "grep -E 'sasl_username=<login>(,|$)' /var/log/mail.log "
            "| grep -oE 'client=[^,]+' | sort | uniq -c | sort -rn",
            "grep -F 'user=<<login>>' /var/log/mail.log "
            "| grep -oE 'rip=[0-9a-fA-F.:]+' | sort | uniq -c | sort -rn",
        ),
        exim=(
            "grep -E ' A=[^ ]+:<login>( |$)' /var/log/exim4/mainlog "
            "| grep -oE '\\[[0-9a-fA-F.:]+\\]' | sort | uniq -c | sort -rn",
            "grep -F 'user=<<login>>' /var/log/mail.log "
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
            "# /etc/postfix/sender_login: one line per address: <sender> <login>\n"
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
            EXIM_APPLY,
        ),
    ),
    Mitigation(
        id="rate-limit-outbound",
        title="Limit how much each client and login may send",
        why=(
            "A rate limit caps the damage of the next stolen password. The Postfix anvil limits "
            f"below defer a client IP after {HOURLY_MESSAGES} messages or {HOURLY_RECIPIENTS} "
            "recipients in an hour, instead of tens of thousands. anvil counts per client IP, "
            "not per SASL login: clients in $mynetworks (a local webmail, for one) are not "
            "limited, and an office behind one NAT address shares one limit (raise it to fit). "
            "The limits also apply to mail other servers send you (deferred mail is retried, "
            "not lost), and anvil_rate_time_unit applies to every smtpd_client_*_rate_limit. "
            "To limit per "
            "SASL login or sender, run a rate-limiting policy daemon (for example "
            "policyd-rate-limit or postfwd) and call it with check_policy_service. The Exim "
            f"ACLs allow {HOURLY_RECIPIENTS} recipients an hour per login, and per client IP "
            "for unauthenticated clients."
        ),
        postfix=(
            "# the limits set now (a change of anvil_rate_time_unit rescales all of them)\n"
            "postconf -n | grep -E 'rate_limit|anvil_rate_time_unit'",
            f"postconf -e 'anvil_rate_time_unit = {ANVIL_TIME_UNIT}' "
            f"'smtpd_client_message_rate_limit = {HOURLY_MESSAGES}' "
            f"'smtpd_client_recipient_rate_limit = {HOURLY_RECIPIENTS}'",
            "# per SASL login: a rate-limiting policy daemon you run on 127.0.0.1:<port> (see its\n"
            "# documentation for the stage: at DATA each message is counted once)\n"
            'postconf -e "smtpd_data_restrictions = reject_unauth_pipelining, '
            "check_policy_service { inet:127.0.0.1:<port>, timeout=5s, default_action=DUNNO }, "
            '$(postconf -h smtpd_data_restrictions)"',
            "postfix reload",
        ),
        exim=(
            "# in acl_smtp_rcpt, before the accept for authenticated senders\n"
            "defer   authenticated = *\n"
            f"        ratelimit     = {HOURLY_RECIPIENTS} / 1h / per_rcpt / $authenticated_id\n"
            "        message       = sending rate limit reached, try again later",
            "# per client IP for everyone else (acl_smtp_rcpt)\n"
            "defer   !authenticated = *\n"
            f"        ratelimit     = {HOURLY_RECIPIENTS} / 1h / per_rcpt / $sender_host_address\n"
            "        message       = sending rate limit reached, try again later",
        ),
    ),
    Mitigation(
        id="limit-auth-attempts",
        title="Slow down and ban password guessing",
        why=(
            "Brute force needs thousands of attempts. Allowing each client IP "
            f"{HOURLY_AUTH} AUTH commands an hour (the same hourly anvil unit as the sending "
            "limits) and banning IPs with 5 failures in 10 minutes makes guessing impractical "
            "and keeps the log readable."
        ),
        postfix=(
            f"postconf -e 'anvil_rate_time_unit = {ANVIL_TIME_UNIT}' "
            f"'smtpd_client_auth_rate_limit = {HOURLY_AUTH}'",
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
            _FIREWALL_BAN,
            "fail2ban-client set postfix-sasl banip <ip>",
            "echo '<ip> REJECT' >> /etc/postfix/client_access.cidr",
            'postconf -e "smtpd_client_restrictions = check_client_access '
            'cidr:/etc/postfix/client_access.cidr, $(postconf -h smtpd_client_restrictions)"',
            "postfix reload",
        ),
        exim=(
            _FIREWALL_BAN,
            "fail2ban-client set exim banip <ip>",
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
            EXIM_APPLY,
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
            "and it affects every user of the server. Query from the server itself (public "
            "resolvers are refused by Spamhaus), or look the address up at "
            "https://check.spamhaus.org/ ."
        ),
        postfix=(_DNSBL_LOOKUP,),
        exim=(_DNSBL_LOOKUP,),
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
            _DNSBL_LOOKUP,
        ),
        exim=(
            "# the queue holds no more spam\nexim -bp | exiqsumm",
            _DNSBL_LOOKUP,
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
            _DNS_AUTH_RECORDS,
            "# DKIM signing through an OpenDKIM milter\n"
            "postconf -e 'smtpd_milters = inet:127.0.0.1:8891' "
            "'non_smtpd_milters = $smtpd_milters'",
        ),
        exim=(
            _DNS_AUTH_RECORDS,
            "# on the remote_smtp transport\n"
            "dkim_domain      = <domain>\n"
            "dkim_selector    = mail\n"
            "dkim_private_key = /etc/exim4/dkim/<domain>.key",
        ),
    ),
    Mitigation(
        id="disable-anonymous-auth",
        title="Refuse anonymous SMTP logins",
        why=(
            "An AUTH ANONYMOUS login counts as authenticated: permit_sasl_authenticated (or "
            "Exim's 'authenticated = *') then lets anyone relay."
        ),
        postfix=(
            "postconf smtpd_sasl_security_options",
            "postconf -e 'smtpd_sasl_security_options = noanonymous'",
            "postfix reload",
        ),
        exim=(
            "exim -bP authenticators",
            "# authenticators section: every server_condition must check the password; delete\n"
            "# any authenticator whose server_condition is a constant yes/true",
            EXIM_APPLY,
        ),
    ),
    Mitigation(
        id="enable-starttls",
        title="Offer STARTTLS with a real certificate and TLS 1.2 or later",
        why=(
            "Without STARTTLS, mail and SMTP logins cross the network in clear; TLS 1.0 and 1.1 "
            "are broken enough that clients refuse them."
        ),
        postfix=(
            "postconf -e 'smtpd_tls_cert_file = /etc/letsencrypt/live/<mx_host>/fullchain.pem' "
            "'smtpd_tls_key_file = /etc/letsencrypt/live/<mx_host>/privkey.pem'",
            "postconf -e 'smtpd_tls_security_level = may' 'smtpd_tls_protocols = >=TLSv1.2' "
            "'smtpd_tls_mandatory_protocols = >=TLSv1.2'",
            "postfix reload",
        ),
        exim=(
            "# main section\n"
            "tls_advertise_hosts = *\n"
            "tls_certificate = /etc/letsencrypt/live/<mx_host>/fullchain.pem\n"
            "tls_privatekey = /etc/letsencrypt/live/<mx_host>/privkey.pem\n"
            "openssl_options = +no_sslv3 +no_tlsv1 +no_tlsv1_1",
            EXIM_APPLY,
        ),
    ),
    Mitigation(
        id="disable-vrfy",
        title="Turn off VRFY and EXPN",
        why=(
            "VRFY and EXPN tell anyone which addresses exist, which spammers use to build "
            "lists and to aim password guessing."
        ),
        postfix=("postconf -e 'disable_vrfy_command = yes'", "postfix reload"),
        exim=(
            "exim -bP acl_smtp_vrfy acl_smtp_expn",
            "# main section: with no ACL set, Exim refuses VRFY and EXPN\n"
            "acl_smtp_vrfy =\n"
            "acl_smtp_expn =",
        ),
    ),
    Mitigation(
        id="restrict-xclient",
        title="Offer XCLIENT and XFORWARD only to your own proxies",
        why=(
            "XCLIENT lets a client claim any IP address and login, so a client allowed to use "
            "it passes every check meant for trusted hosts; XFORWARD forges what is logged."
        ),
        postfix=(
            "postconf smtpd_authorized_xclient_hosts smtpd_authorized_xforward_hosts",
            "postconf -e 'smtpd_authorized_xclient_hosts =' 'smtpd_authorized_xforward_hosts ='",
            "postfix reload",
        ),
        exim=(
            "exim -bP hosts_xclient",
            "# main section (Exim 4.97 and later): your own proxies only, or nobody\n"
            "hosts_xclient =",
        ),
    ),
    Mitigation(
        id="hide-banner-version",
        title="Keep the software version out of the SMTP banner",
        why=(
            "A version in the banner tells attackers which known bugs to try; nothing that "
            "delivers mail needs it."
        ),
        postfix=(
            "postconf smtpd_banner",
            "postconf -e 'smtpd_banner = $myhostname ESMTP'",
            "postfix reload",
        ),
        exim=(
            "exim -bP smtp_banner",
            "# main section\nsmtp_banner = $smtp_active_hostname ESMTP",
        ),
    ),
    Mitigation(
        id="limit-connections",
        title="Limit connections per client",
        why=(
            "Without a limit one client can open sessions as fast as it likes: relay scanners "
            "and password guessers run at full speed and can starve real senders. Here: "
            f"{HOURLY_CONNECTIONS} new connections an hour and 20 at once per client IP "
            "(anvil_rate_time_unit is shared with the sending and AUTH limits)."
        ),
        postfix=(
            f"postconf -e 'anvil_rate_time_unit = {ANVIL_TIME_UNIT}' "
            f"'smtpd_client_connection_rate_limit = {HOURLY_CONNECTIONS}' "
            "'smtpd_client_connection_count_limit = 20'",
            "postfix reload",
        ),
        exim=(
            "exim -bP smtp_accept_max smtp_accept_max_per_host",
            "# main section\nsmtp_accept_max = 100\nsmtp_accept_max_per_host = 10",
        ),
    ),
    Mitigation(
        id="harden-smtpd-tls",
        title="Offer STARTTLS everywhere and allow AUTH only over TLS",
        why=(
            "Without TLS, passwords and mail cross the network readable; a password sniffed "
            "once lets a spammer relay through the server as that user."
        ),
        postfix=(
            "postconf -e 'smtpd_tls_chain_files = /etc/postfix/<key.pem> /etc/postfix/<cert.pem>'",
            "postconf -e 'smtpd_tls_security_level = may' 'smtpd_tls_auth_only = yes' "
            "'smtpd_tls_protocols = >=TLSv1.2' 'smtpd_tls_mandatory_protocols = >=TLSv1.2'",
            "postconf -P 'submission/inet/smtpd_tls_security_level=encrypt'",
            "postfix reload",
        ),
        exim=(
            "# main section\n"
            "tls_advertise_hosts = *\n"
            "tls_certificate = /etc/exim4/<cert.pem>\n"
            "tls_privatekey = /etc/exim4/<key.pem>\n"
            "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}",
            EXIM_APPLY,
        ),
    ),
    Mitigation(
        id="exim-real-authenticator",
        title="Make every authenticator check a real password",
        why=(
            "An authenticator whose server_condition is always true logs in anyone with any "
            "password, and authenticated clients may relay."
        ),
        postfix=("postconf smtpd_sasl_type smtpd_sasl_path",),
        exim=(
            "# begin authenticators: check the password, e.g. through Dovecot\n"
            "dovecot_plain:\n"
            "  driver = dovecot\n"
            "  public_name = PLAIN\n"
            "  server_socket = /var/run/dovecot/auth-client\n"
            "  server_set_id = $auth1",
            EXIM_APPLY,
        ),
    ),
    Mitigation(
        id="limit-listening",
        title="Listen on loopback only when the host only sends mail",
        why=(
            "A host that only sends (web server, monitoring) needs no SMTP listener on the "
            "Internet; without one it cannot be used as a relay at all."
        ),
        postfix=("postconf -e 'inet_interfaces = loopback-only'", "postfix stop && postfix start"),
        exim=("# main section\nlocal_interfaces = <; 127.0.0.1 ; ::1", "exim -bV"),
    ),
    Mitigation(
        id="raise-compatibility-level",
        title="Move off the legacy defaults",
        why=(
            "A low compatibility_level keeps pre-3.0 defaults (no relay list, subnet-wide "
            "mynetworks) even on a new Postfix."
        ),
        postfix=(
            "postconf compatibility_level mail_version",
            "# set explicitly what you rely on, then\npostconf -e 'compatibility_level = 3.6'",
            "postfix reload",
        ),
        exim=("exim -bV",),
    ),
    Mitigation(
        id="enable-smuggling-protection",
        title="Turn on SMTP smuggling protection",
        why=(
            "Smuggled messages inside one SMTP transaction pass SPF/DMARC as your server; "
            "Postfix >= 3.9 blocks them by default, older releases need the settings."
        ),
        postfix=(
            "postconf -e 'smtpd_forbid_bare_newline = normalize' "
            "'smtpd_forbid_unauth_pipelining = yes'",
            "postfix reload",
        ),
        exim=("# upgrade to Exim >= 4.97.1, which refuses bare line feeds\nexim -bV",),
    ),
    Mitigation(
        id="restore-smtpd-limits",
        title="Keep smtpd's concurrency and error limits on",
        why="They stop one client from hogging smtpd or probing without end.",
        postfix=(
            "postconf -X smtpd_client_connection_count_limit smtpd_soft_error_limit "
            "smtpd_hard_error_limit smtpd_junk_command_limit",
            "postfix reload",
        ),
        exim=("# main section\nsmtp_accept_max_per_host = 5", "exim -bV"),
    ),
    # relayguard dnsbl and relayguard domain
    Mitigation(
        id="fix-reverse-dns",
        title="Give the sending address a PTR that resolves back, and HELO with that name",
        why=(
            "Receivers and block lists (Spamhaus CSS/PBL among them) distrust mail from an "
            "address whose PTR is missing, generic, or does not resolve back to it, and from a "
            "server whose HELO name does not match. The PTR is set by whoever owns the address "
            "block (your hosting provider or ISP), not in your own zone."
        ),
        postfix=(
            "# what is published now: PTR, and the name back to the address\n"
            "dig +short -x <server_ip>\n"
            "dig +short <mx_host>",
            "# ask the owner of <server_ip> (hosting panel or ISP) to set its PTR to <mx_host>,\n"
            "# and publish <mx_host> A <server_ip> in your zone; then HELO with the same name\n"
            "postconf -e 'smtp_helo_name = <mx_host>'\n"
            "postfix reload",
        ),
        exim=(
            "# what is published now: PTR, and the name back to the address\n"
            "dig +short -x <server_ip>\n"
            "dig +short <mx_host>",
            "# on the remote_smtp transport, once the PTR of <server_ip> is <mx_host>\n"
            "helo_data = <mx_host>",
            EXIM_APPLY,
        ),
    ),
    Mitigation(
        id="use-local-resolver",
        title="Query block lists through your own recursive resolver",
        why=(
            "Spamhaus, URIBL, SURBL and Barracuda refuse queries that come through public or "
            "shared resolvers and answer with error codes (127.255.255.254, 127.0.0.1) instead. "
            "A local Unbound asks the lists directly; for commercial volume use a Spamhaus DQS "
            "key (relayguard dnsbl --dqs-key)."
        ),
        postfix=(
            "apt-get install -y unbound",
            "# /etc/resolv.conf: the local resolver first\nnameserver 127.0.0.1",
            "# 127.0.0.2 and 127.0.0.4 mean it works; 127.255.255.254 means still refused\n"
            "dig +short 2.0.0.127.zen.spamhaus.org @127.0.0.1",
        ),
        exim=(
            "apt-get install -y unbound",
            "# /etc/resolv.conf: the local resolver first\nnameserver 127.0.0.1",
            "# 127.0.0.2 and 127.0.0.4 mean it works; 127.255.255.254 means still refused\n"
            "dig +short 2.0.0.127.zen.spamhaus.org @127.0.0.1",
        ),
    ),
    Mitigation(
        id="fix-spf-record",
        title="Publish one SPF record that names your senders and ends in -all",
        why=(
            "An SPF record that passes everyone (+all), says nothing (?all, no all), breaks "
            "RFC 7208's limits, or exists twice lets anyone send as your domain, and receivers "
            "treat a broken record as no record. The finding shows the record to publish."
        ),
        postfix=(
            "# what is published now\ndig +short TXT <domain>",
            "# then check the new record from outside\nrelayguard domain <domain> --ip <server_ip>",
        ),
        exim=(
            "# what is published now\ndig +short TXT <domain>",
            "# then check the new record from outside\nrelayguard domain <domain> --ip <server_ip>",
        ),
    ),
    Mitigation(
        id="enforce-dmarc",
        title="Move DMARC to p=quarantine, then p=reject, with reports you read",
        why=(
            "p=none only asks for reports: mail forged in your name is still delivered. Read the "
            "aggregate (rua) reports for a few weeks, make sure your own mail passes SPF or "
            "DKIM aligned, then publish quarantine and finally reject."
        ),
        postfix=(
            "# what is published now\ndig +short TXT _dmarc.<domain>",
            "# the record to publish, in your zone (first quarantine, then reject)\n"
            '_dmarc.<domain>. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@<domain>"',
        ),
        exim=(
            "# what is published now\ndig +short TXT _dmarc.<domain>",
            "# the record to publish, in your zone (first quarantine, then reject)\n"
            '_dmarc.<domain>. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@<domain>"',
        ),
    ),
    Mitigation(
        id="rotate-dkim-key",
        title="Sign with a 2048-bit DKIM key under a new selector",
        why=(
            "RFC 8301: keys under 1024 bits must be refused by verifiers and signers should use "
            "2048. Publish the new key, sign with it, and keep the old record until mail signed "
            "with it has been delivered; then revoke it (empty p=)."
        ),
        postfix=(
            "opendkim-genkey -b 2048 -d <domain> -s <selector> -D /etc/opendkim/keys/<domain>",
            "# publish this TXT as <selector>._domainkey.<domain>, then point the KeyTable at it\n"
            "cat /etc/opendkim/keys/<domain>/<selector>.txt",
            "systemctl reload opendkim",
        ),
        exim=(
            "openssl genrsa -out /etc/exim4/dkim/<domain>-<selector>.key 2048",
            "# publish this as p= in <selector>._domainkey.<domain> TXT \"v=DKIM1; k=rsa; p=...\"\n"
            "openssl rsa -in /etc/exim4/dkim/<domain>-<selector>.key -pubout -outform DER "
            "| base64 -w0",
            "# on the remote_smtp transport\n"
            "dkim_selector    = <selector>\n"
            "dkim_private_key = /etc/exim4/dkim/<domain>-<selector>.key",
            EXIM_APPLY,
        ),
    ),
    # relayguard pcap
    Mitigation(
        id="block-egress-smtp",
        title="Let only the MTA connect out to port 25",
        why=(
            "A host or program that talks SMTP to the Internet itself (malware, a hijacked web "
            "application) bypasses the MTA's limits, logs and queue, and gets the address "
            "block-listed. Find the process, then allow outbound port 25 to the MTA's user "
            "only, on the host and at the border; everything else goes through the local MTA."
        ),
        postfix=(
            "# on <ip>: which process holds the port-25 connections\nss -tnp 'dport = :25'",
            "relayguard firewall egress --mta-user postfix",
            "relayguard firewall egress --mta-user postfix --apply",
            "# hosts without nftables\nrelayguard firewall egress --mta-user postfix --iptables "
            "--apply",
            "# at the border firewall: only the mail server <server_ip> may open port 25\n"
            "iptables -I FORWARD -p tcp --dport 25 ! -s <server_ip> -j REJECT "
            "--reject-with tcp-reset",
        ),
        exim=(
            "# on <ip>: which process holds the port-25 connections\nss -tnp 'dport = :25'",
            "relayguard firewall egress --mta-user Debian-exim",
            "relayguard firewall egress --mta-user Debian-exim --apply",
            "# at the border firewall: only the mail server <server_ip> may open port 25\n"
            "iptables -I FORWARD -p tcp --dport 25 ! -s <server_ip> -j REJECT "
            "--reject-with tcp-reset",
        ),
    ),
)

_EGRESS_STEPS = (
    "# outbound connections to SMTP ports right now, with their processes\n"
    "ss -tnp '( dport = :25 or dport = :465 or dport = :587 )'",
)
_ENTRIES += (
    Mitigation(
        id="find-spam-script",
        title="Find and stop the program that sends the mail",
        why=(
            "The process named in the finding sends mail itself: usually a web script dropped "
            "through a vulnerable site or stolen FTP credentials. Find where it runs from, stop "
            "it, and clean the site or account it came from."
        ),
        postfix=(
            *_EGRESS_STEPS,
            "# for each pid the finding names: what it runs, since when, from where\n"
            "ps -o pid,user,lstart,args -p PID && ls -l /proc/PID/cwd /proc/PID/exe",
            "# PHP: record which script calls mail() (php.ini)\n"
            "mail.add_x_header = On\nmail.log = /var/log/php-mail.log",
        ),
        exim=(
            *_EGRESS_STEPS,
            "# for each pid the finding names: what it runs, since when, from where\n"
            "ps -o pid,user,lstart,args -p PID && ls -l /proc/PID/cwd /proc/PID/exe",
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


# --- placeholders -----------------------------------------------------------------------------

PLACEHOLDERS: dict[str, str] = {
    "<login>": "the full SASL login, e.g. alice@example.org",
    "<localpart>": "the login before the @ (alice)",
    "<domain>": "a domain of yours: the login's domain (example.org)",
    "<ip>": "the client IP address of the incident (attacker, relay user, prober)",
    "<sender>": "an envelope sender address",
    "<server_ip>": "the public IP address this server sends mail from",
    "<reversed_server_ip>": "<server_ip> with its octets reversed, for DNSBL lookups",
    "<queue_id>": "a Postfix queue id",
    "<message_id>": "an Exim message id",
    "<recipient>": "a recipient address",
    "<mx_host>": "the host name of your mail server",
    "<lan_cidr>": "your real LAN, e.g. 192.168.1.0/24",
    "<map>": "the file name of an access map",
    "<port>": "the port your policy daemon listens on",
    "<selector>": "a new DKIM selector name, e.g. mail2026",
}

# Values come from logs, i.e. from whoever talks to the server, and are pasted into shell
# commands and config files: only plain addresses and IPs are substituted, never anything a
# shell, a regex or an option parser could read as more than a word. The first character is
# alphanumeric so a value can never pass for an option ("-d@x").
_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=-]{0,127}(?:@[A-Za-z0-9][A-Za-z0-9.-]{0,252})?")
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=-]{0,127}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_DOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_IP_CHARS = frozenset("0123456789abcdefABCDEF.:")


def safe_ip(value: str) -> bool:
    """An IPv4 or IPv6 address and nothing else (no zone id, no prefix length)."""
    if not value or len(value) > 45 or not _IP_CHARS.issuperset(value):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def safe_login(value: str) -> bool:
    """``alice@example.org`` or a bare ``alice``: letters, digits and ``._%+=-`` only."""
    return _LOGIN.fullmatch(value) is not None


def safe_address(value: str) -> bool:
    return _ADDRESS.fullmatch(value) is not None


def safe_domain(value: str) -> bool:
    return _DOMAIN.fullmatch(value) is not None


@dataclass(slots=True)
class Fill:
    """What an incident's findings say about the placeholders."""

    # placeholder -> the value substituted (always a safe value, see above)
    values: dict[str, str] = field(default_factory=dict)
    # placeholder -> every candidate, when the findings name more than one (left unfilled)
    several: dict[str, list[str]] = field(default_factory=dict)
    # placeholders whose one candidate is not a plain value (left unfilled)
    unsafe: list[str] = field(default_factory=list)


# Findings whose ip subject is this server's own sending address.
_OWN_ADDRESS_INDICATORS = frozenset(
    {"blocklisted-by-remote", "dnsbl-listed", "rdns-missing", "rdns-not-confirmed", "helo-mismatch"}
)


def _candidates(findings: Iterable[Finding]) -> dict[str, list[str]]:
    """Placeholder -> distinct values the findings' own subjects give, in order of appearance.

    ``related`` subjects are left out on purpose: a brute force names every account it tried,
    but only its own subject (the attacking IP) is what the incident is about.
    """
    found: dict[str, dict[str, None]] = {}

    def add(placeholder: str, value: object) -> None:
        if isinstance(value, str) and value:
            found.setdefault(placeholder, {})[value] = None

    for finding in findings:
        subject = finding.subject
        if subject.kind == "sasl_user":
            add("<login>", subject.value)
        elif subject.kind == "ip":
            # The address a remote list names is this server's own, never one to ban.
            listed = finding.indicator in _OWN_ADDRESS_INDICATORS
            add("<server_ip>" if listed else "<ip>", subject.value)
        elif subject.kind == "sender":
            add("<sender>", subject.value)
        elif subject.kind == "domain":
            add("<domain>", subject.value)
        if finding.indicator == "compromised-account":
            add("<ip>", finding.details.get("login_ip"))
    return {k: list(v) for k, v in found.items()}


_SAFE = {
    "<login>": safe_login,
    "<ip>": safe_ip,
    "<server_ip>": safe_ip,
    "<sender>": safe_address,
    "<domain>": safe_domain,
}


def fill_for(findings: Iterable[Finding]) -> Fill:
    """The placeholder values ``findings`` pin down: one candidate, and a plain one."""
    candidates = _candidates(findings)
    login = candidates.get("<login>", [])
    if len(login) == 1 and safe_login(login[0]):
        local, at, domain = login[0].partition("@")
        candidates["<localpart>"] = [local]
        if at:
            domains = candidates.setdefault("<domain>", [])
            if domain not in domains:
                domains.append(domain)
    out = Fill()
    for placeholder in PLACEHOLDERS:
        values = candidates.get(placeholder, [])
        if len(values) > 1:
            out.several[placeholder] = values
        elif values:
            check = _SAFE.get(placeholder)
            if check is None or check(values[0]):
                out.values[placeholder] = values[0]
            else:
                out.unsafe.append(placeholder)
    server_ip = out.values.get("<server_ip>")
    if server_ip is not None and "." in server_ip:
        out.values["<reversed_server_ip>"] = ".".join(reversed(server_ip.split(".")))
    return out


def fill(step: str, values: dict[str, str]) -> str:
    """``step`` with the placeholders in ``values`` replaced; the others stay as they are."""
    ip = values.get("<ip>")
    if ip is not None and ":" in ip:  # an IPv6 address needs the IPv6 firewall
        step = step.replace("iptables -I INPUT -s <ip>", "ip6tables -I INPUT -s <ip>")
    for placeholder, value in values.items():
        step = step.replace(placeholder, value)
    return step


@dataclass(frozen=True, slots=True)
class Action:
    """A catalogue entry with its steps filled in for one incident."""

    mitigation: Mitigation
    postfix: tuple[str, ...]
    exim: tuple[str, ...]


_MAX_EXPANDED = 20  # one command per address up to this many; beyond, the placeholder stays


def expands(ips: list[str]) -> bool:
    """Whether commands naming ``<ip>`` are written out once for each of ``ips``."""
    return 1 < len(ips) <= _MAX_EXPANDED and all(map(safe_ip, ips))


def action(
    entry: Mitigation, values: dict[str, str], several: dict[str, list[str]] | None = None
) -> Action:
    """``entry`` filled with ``values``; a step naming ``<ip>`` when the incident has several
    attacking addresses becomes one command per address (all of them plain IPs)."""
    ips = (several or {}).get("<ip>", [])
    if "<ip>" in values or not expands(ips):
        ips = []

    def steps(raw: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for step in raw:
            if ips and "<ip>" in step:
                lines: list[str] = []  # comments once, each command line once per address
                for line in step.split("\n"):
                    if "<ip>" in line:
                        lines.extend(fill(line, {**values, "<ip>": ip}) for ip in ips)
                    else:
                        lines.append(fill(line, values))
                out.append("\n".join(lines))
            else:
                out.append(fill(step, values))
        return tuple(out)

    return Action(mitigation=entry, postfix=steps(entry.postfix), exim=steps(entry.exim))


def actions(findings: Sequence[Finding]) -> list[Action]:
    """The catalogue entries ``findings`` name, each once, filled in with what they pin down."""
    filled = fill_for(findings)
    entries = (get(mid) for mid in used_by(findings))
    return [action(entry, filled.values, filled.several) for entry in entries if entry is not None]
