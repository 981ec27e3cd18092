"""gridline-dev: the local stack (Kafka, PostgreSQL, the four services) for make up and tests."""
