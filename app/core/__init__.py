"""The kernel under the API and the workers: settings, the database and its tables,
enums and ids, the queue (the one module that knows arq), signing, the delivery state
machine and retry policy, ordering, the outbound address rules, a webhook's lifecycle,
the metrics both processes export and the log format.

`workers/` imports only this package (and `app.__version__`); nothing in `app/` imports
`workers/` (`tests/test_layers.py`)."""
