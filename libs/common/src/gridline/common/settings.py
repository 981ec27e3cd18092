"""Typed settings pieces shared by every service; each fails fast on bad values."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class KafkaSettings(BaseSettings):
    """Where the broker is and how this process talks to it."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINE_KAFKA_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"
    # aiokafka's linger. The outbox relay enqueues whole batches at once, so waiting here
    # would only delay them; the relay lingers before reading the outbox instead.
    linger_ms: int = Field(default=0, ge=0, le=1000)
    # After a commit wakes it, the relay waits this long for more committed events.
    relay_linger_ms: int = Field(default=5, ge=0, le=1_000)
    max_batch_size: int = Field(default=262_144, ge=16_384)
    request_timeout_ms: int = Field(default=15_000, ge=1_000)
    # One poll is one database transaction: at most this many records and bytes.
    max_poll_records: int = Field(default=500, ge=1, le=10_000)
    fetch_max_bytes: int = Field(default=16_777_216, ge=65_536)
    # How long the broker holds a fetch when it has nothing; data end the wait at once.
    fetch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    # A consumer's batch that is not full waits this long for more events (see _poll).
    consumer_linger_ms: int = Field(default=5, ge=0, le=1_000)
    # Consumers commit offsets at most this often (and on revoke and stop); after a crash
    # up to this much is read again and skipped by the inbox.
    commit_interval_ms: int = Field(default=1_000, ge=0, le=60_000)
    # A consumer that applies nothing this long while the broker holds events for it, or
    # whose poll or commit does not return, is closed and replaced (see EventConsumer.run).
    consumer_stall_s: float = Field(default=15.0, ge=2.0, le=600.0)

    @field_validator("bootstrap")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for part in value.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {value!r}")
        return value


class PostgresSettings(BaseSettings):
    """The PostgreSQL server; each service keeps its tables in a schema of its own."""

    model_config = SettingsConfigDict(extra="ignore")

    url: str = Field(
        default="postgresql://postgres@127.0.0.1:25432/gridline",
        validation_alias="DATABASE_URL",
    )
    pool_min: int = Field(default=1, ge=1, validation_alias="GRIDLINE_PG_POOL_MIN")
    pool_max: int = Field(default=10, ge=1, validation_alias="GRIDLINE_PG_POOL_MAX")
    # The longest any wait for a pooled connection may take (pg.BoundedPool).
    acquire_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, validation_alias="GRIDLINE_PG_ACQUIRE_TIMEOUT_S"
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must start with postgresql://")
        return value

    @model_validator(mode="after")
    def _pool_bounds(self) -> PostgresSettings:
        if self.pool_min > self.pool_max:
            raise ValueError("GRIDLINE_PG_POOL_MIN must not exceed GRIDLINE_PG_POOL_MAX")
        return self


class ClockSettings(BaseSettings):
    """The one clock of the stack (see contract: GRIDLINE_CLOCK_SPEED)."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINE_CLOCK_", extra="ignore")

    speed: float = Field(default=1.0, gt=0, le=1_000_000)
    # Unix seconds at which simulated time equals real time. Every process of one stack
    # must share it, or their clocks drift apart when speed != 1.
    epoch: float | None = None

    @model_validator(mode="after")
    def _epoch_needed(self) -> ClockSettings:
        if self.speed != 1.0 and self.epoch is None:
            raise ValueError(
                "GRIDLINE_CLOCK_EPOCH (unix seconds) is required when GRIDLINE_CLOCK_SPEED != 1"
            )
        return self


class InboxSettings(BaseSettings):
    """How long the inbox remembers applied event ids (gridline.common.inbox)."""

    model_config = SettingsConfigDict(env_prefix="GRIDLINE_INBOX_", extra="ignore")

    # A copy of an event can come as long as its producing service may start again with
    # the event still in its outbox, so this is at least that service's longest outage.
    retention_hours: float = Field(default=168.0, ge=1.0, le=24 * 3650)
    sweep_interval_s: float = Field(default=600.0, ge=1.0, le=86_400.0)


class ServiceSettings(BaseSettings):
    """Fields every service has; each service subclasses it with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    admin_key: str | None = Field(
        default=None, validation_alias="GRIDLINE_ADMIN_KEY", min_length=16
    )
    # Partners' signing secrets derive from it (gridline.common.partners): intake verifies
    # partners' requests with it, notify signs their callbacks.
    partner_secret_key: str | None = Field(
        default=None, validation_alias="GRIDLINE_PARTNER_SECRET_KEY", min_length=32
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)


def load(cls: type[S]) -> S:
    """`cls()`, read from the environment. Bad values stop the process with one line per
    variable to fix, named as it is set (`GRIDLINE_INBOX_RETENTION_HOURS`, not the field);
    the values are not repeated, since some are secrets."""
    try:
        return cls()
    except ValidationError as exc:
        models = _models(cls)
        lines = [_problem(models.get(exc.title, cls), error) for error in exc.errors()]
        raise SystemExit("bad settings, nothing started:\n  " + "\n  ".join(lines)) from None


def variable(model: type[BaseSettings], field: str) -> str:
    """The environment variable that sets `field` of `model` (a field's name, or the alias
    an error names it by)."""
    info = model.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    if any(f.validation_alias == field for f in model.model_fields.values()):
        return field
    return (str(model.model_config.get("env_prefix", "")) + field).upper()


def _models(cls: type[BaseSettings]) -> dict[str, type[BaseSettings]]:
    """`cls` and the settings nested in it, by name (a ValidationError's title)."""
    found: dict[str, type[BaseSettings]] = {cls.__name__: cls}
    for info in cls.model_fields.values():
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            found.update(_models(nested))
    return found


def _problem(model: type[BaseSettings], error: Any) -> str:
    if not error["loc"]:  # a check across fields: its message names the variables
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{variable(model, str(error['loc'][0]))}: {error['msg']}"
