"""Database layer: one declarative base, engines for SQLite and PostgreSQL, migrations."""
