"""The kernel under the API and the workers: settings, the database and its tables,
enums and ids, the queue hand-off, signing, ordering, the outbound address rules, a
webhook's lifecycle and the metrics both processes export.

`workers/` imports only this package (and `app.__version__`); nothing in `app/` imports
`workers/` (`tests/test_layers.py`)."""
