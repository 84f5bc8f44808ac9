"""The trace simulator: cluster traces replayed through the live placement code."""
