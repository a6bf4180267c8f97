"""relayguard: find out whether a mail server is abused as a spam relay, prove it, and stop it."""

__version__ = "0.1.0"
