"""The web console: a single-page app of static files served at /ui (docs/console.md)."""
