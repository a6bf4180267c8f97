"""Mitigations carried out: containment of an account, egress and ban firewall rules."""
