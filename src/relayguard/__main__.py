from relayguard.cli import run

run()
