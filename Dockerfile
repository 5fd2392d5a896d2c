# The tracectx demo app, for docker-compose (Jaeger, Kafka, Redis, Alertmanager alongside).
# Installs the `demo` and `stream` extras (no embedded broker binaries: compose provides the
# services)
# and runs as an unprivileged user.
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY tracectx ./tracectx
COPY integrations ./integrations
COPY demo ./demo
RUN pip install --no-cache-dir ".[demo,stream]" ./demo \
    && useradd --system --uid 10001 --create-home tracectx \
    && mkdir /out && chown tracectx /out
USER tracectx
ENTRYPOINT ["tracectx", "demo"]
