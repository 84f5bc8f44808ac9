"""Plain building blocks shared by every domain: errors, time, units."""
