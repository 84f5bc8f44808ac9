"""The capacity calendar: supply versus commitments over time, quotes, and the invariants."""
