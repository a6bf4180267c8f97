"""``relayguard audit``: find the Postfix and Exim settings that make a server a spam relay.

Pure core (parsers, effective values, rules) over a thin I/O shell (:mod:`.io`). Entry points:
load a configuration with :mod:`relayguard.audit.io`, then :func:`run_audit`.
"""

from relayguard.audit._errors import AuditError, ConfigSyntaxError
from relayguard.audit.effective import PostfixConfig, Setting, SmtpdService
from relayguard.audit.exim import EximConfig, parse_exim
from relayguard.audit.maincf import parse_main_cf
from relayguard.audit.mastercf import parse_master_cf
from relayguard.audit.report import AUDIT_SCHEMA, AuditResult, run_audit

__all__ = [
    "AUDIT_SCHEMA",
    "AuditError",
    "AuditResult",
    "ConfigSyntaxError",
    "EximConfig",
    "PostfixConfig",
    "Setting",
    "SmtpdService",
    "parse_exim",
    "parse_main_cf",
    "parse_master_cf",
    "run_audit",
]
