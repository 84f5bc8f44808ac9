"""The web console: static files served at `/`, and the two endpoints the shell needs."""
