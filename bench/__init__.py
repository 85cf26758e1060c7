"""The storehooks benchmark harness: `python -m bench` (see docs/performance.md).

It starts Redis, the storehooks API and worker, a receiver and a bare FastAPI endpoint
as subprocesses on 127.0.0.1, measures the ceilings of this machine, delivery
throughput, ingestion, end-to-end latency and the cost of a retry backlog, prints a
table and writes bench/results/<UTC date-time>.json.
"""
