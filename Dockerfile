# syntax=docker/dockerfile:1
# Build stage: wheels for storehooks and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

# Runtime stage: no compilers, a non-root user, tini as PID 1.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 storehooks
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER storehooks
WORKDIR /home/storehooks
# Inside a container the worker's metrics listen on every interface, as the API does:
# the published ports (docker-compose.yml) decide who reaches them.
ENV STOREHOOKS_DATABASE_URL=sqlite+aiosqlite:////home/storehooks/storehooks.db \
    STOREHOOKS_WORKER_METRICS_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "storehooks"]
# `docker run IMAGE worker` runs a delivery worker; `IMAGE migrate` the migrations.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
