"""Live monitoring: the queue, outbound SMTP connections, the MTA's resources, metrics, alerts."""
