"""postfix parser: filled in by its own module's author."""

from relayguard.logs.events import Event


def parse(ev: Event, daemon: str, message: str) -> None:
    """Set ev.type and fields from a Postfix message body; leave ev.type unparsed if unknown."""
