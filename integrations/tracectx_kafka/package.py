"""The library versions each instrumentor instruments (read by `BaseInstrumentor`)."""

KAFKA_PYTHON = ("kafka-python >= 3.0",)
AIOKAFKA = ("aiokafka >= 0.9",)
CONFLUENT_KAFKA = ("confluent-kafka >= 2.2",)
_instruments = KAFKA_PYTHON
