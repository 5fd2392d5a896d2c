# The tracectx demo app, for docker-compose (Jaeger, Kafka, Redis, Alertmanager alongside).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tracectx ./tracectx
COPY integrations ./integrations
COPY demo ./demo
RUN pip install --no-cache-dir ".[all]"
ENTRYPOINT ["tracectx", "demo"]
