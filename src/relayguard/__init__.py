"""relayguard: find out whether a mail server is abused as a spam relay, prove it, and stop it."""

__version__ = "0.1.0"


def run() -> None:
    """Console-script entry point. It imports the CLI itself so that Ctrl-C while the CLI is
    still loading (its first tens of milliseconds) ends as any other interrupt does: one line
    and exit code 3, not a traceback."""
    import sys

    try:
        from relayguard.cli import run as cli_run
    except KeyboardInterrupt:
        sys.stderr.write("relayguard: interrupted\n")
        sys.exit(3)
    cli_run()
