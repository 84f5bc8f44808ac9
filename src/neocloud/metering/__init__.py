"""Metering: usage and telemetry events in, three ledgers out (measured, billable, excluded)."""
