from relayguard import run

run()
