"""The service's settings: one typed object read from ``SMARTRETRY_*`` environment variables.

Built by :func:`get_settings` (cached) when the app is created, never at import time.
Tests build their own :class:`Settings` and pass it to ``create_app``.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from training.config.quiet_hours import QuietHours

HASH_PREFIX = "sha256:"


def hash_key(key: str) -> str:
    """The stored form of an API key: ``sha256:<hex of SHA-256 of the UTF-8 key>``."""
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_key_file(path: Path) -> list[str]:
    """Hashed keys, one ``sha256:<64 hex>`` per line; blank lines and ``#`` comments skipped."""
    hashes = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        digest = line.removeprefix(HASH_PREFIX).lower()
        if (
            not line.startswith(HASH_PREFIX)
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(
                f"{path}:{number}: expected 'sha256:<64 hex digits>' "
                "(make one with: printf %s KEY | sha256sum)"
            )
        hashes.append(HASH_PREFIX + digest)
    return hashes


class Settings(BaseSettings):
    """Every knob of ``smartretry serve``; environment variable = ``SMARTRETRY_`` + name."""

    model_config = SettingsConfigDict(env_prefix="SMARTRETRY_", extra="ignore", frozen=True)

    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="plain API keys, comma-separated"
    )
    api_keys_file: Path | None = Field(
        None, description="file of hashed keys, one 'sha256:<hex>' per line"
    )
    api_key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="re-read the store's API keys (smartretry keys) when the copy in memory is "
        "older than this: a created or revoked key takes effect within this delay",
    )
    rate_limit_per_second: float = Field(
        200.0,
        ge=0,
        description="requests per second per API key (token bucket, per worker process); "
        "0: no limit",
    )
    rate_limit_burst: int = Field(
        400, ge=1, description="requests a key may send at once above its rate"
    )
    request_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="a /v1 request (body upload included) not answered within this many "
        "seconds gets 503 request_timeout",
    )
    outcomes_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After of a 503 answered while the store is unreachable"
    )
    database_url: str = Field(
        "sqlite:///smartretry.sqlite", description="SQLAlchemy URL of the decisions/outcomes store"
    )
    model: str | None = Field(
        "models:/smart-retry@champion",
        description="decision artifact: MLflow model URI or local path; empty = rules fallback only",
    )
    model_warm_up: bool = Field(
        True,
        description="when the model loads (start, reload), decide its decline codes and a few "
        "synthetic requests so the first requests find the decision memos filled (~0.3 s more "
        "to load); false: the first requests fill them",
    )
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0, description="largest accepted request body")
    max_batch_items: int = Field(1000, ge=1000, description="items per /v1/recommendations/batch")
    max_outcome_events: int = Field(5000, ge=1000, description="events per /v1/outcomes")
    quiet_start_hour: int | None = Field(
        None,
        ge=0,
        le=23,
        description="override the local quiet hours' start for every decider (learned model and "
        "fallback); unset: the model's own (params.yaml policy.quiet_hours), the default for the "
        "fallback",
    )
    quiet_end_hour: int | None = Field(
        None, ge=0, le=23, description="override the local quiet hours' end (as above)"
    )
    allow_reload: bool = Field(True, description="enable POST /v1/admin/reload")
    reload_interval_seconds: float = Field(
        0, ge=0, description="re-load the model every N seconds (0: only on POST /v1/admin/reload)"
    )
    microbatch_max_items: int = Field(
        256,
        ge=1,
        description="single recommendations arriving together are decided in one call of at "
        "most this many (1: one call per request)",
    )
    microbatch_wait_ms: float = Field(
        0, ge=0, le=1000, description="wait this long for more single requests before a call"
    )
    switch_interval_ms: float = Field(
        5.0,
        gt=0,
        le=100,
        description="Python's thread switch interval (sys.setswitchinterval) in each worker: "
        "how long the event loop may wait for the GIL while a decision runs on its thread",
    )
    scoring_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="LightGBM threads for a scoring call of 20,000 model rows or more (a batch of "
        "about 50 requests and up); smaller calls use one",
    )
    decision_write_behind: bool | None = Field(
        None,
        description="store decisions after answering, in batches by one thread (false: each "
        "answer waits for its decision's commit); unset: on for SQLite, off for PostgreSQL "
        "(an answered decision is then stored even if the server is killed); outcomes are "
        "always committed before 2xx",
    )

    stripe_webhook_secret: SecretStr | None = Field(
        None,
        description="Stripe endpoint signing secret (whsec_...); unset: /v1/webhooks/stripe answers 404",
    )
    stripe_webhook_tolerance_seconds: int = Field(
        300, ge=1, description="oldest accepted Stripe-Signature timestamp, in seconds"
    )
    adyen_hmac_key: SecretStr | None = Field(
        None, description="Adyen webhook HMAC key (hex); unset: /v1/webhooks/adyen answers 404"
    )
    lago_webhook_secret: SecretStr | None = Field(
        None, description="Lago HMAC webhook secret; unset: /v1/webhooks/lago answers 404"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _empty_model_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("adyen_hmac_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                bytes.fromhex(value.get_secret_value())
            except ValueError:
                raise ValueError(
                    "the Adyen HMAC key must be hexadecimal (as Adyen shows it)"
                ) from None
        return value

    @model_validator(mode="after")
    def _check_keys_file(self) -> Settings:
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"SMARTRETRY_API_KEYS_FILE: no such file {self.api_keys_file}")
        return self

    def quiet_hours_override(self) -> QuietHours | None:
        """The quiet hours the operator set (a missing bound keeps its default), or None."""
        if self.quiet_start_hour is None and self.quiet_end_hour is None:
            return None
        default = QuietHours()
        return QuietHours(
            start_hour=default.start_hour
            if self.quiet_start_hour is None
            else self.quiet_start_hour,
            end_hour=default.end_hour if self.quiet_end_hour is None else self.quiet_end_hour,
        )

    def write_behind(self) -> bool:
        """Whether decisions are written after answering (see ``decision_write_behind``)."""
        if self.decision_write_behind is not None:
            return self.decision_write_behind
        return self.database_url.startswith("sqlite")

    def key_hashes(self) -> list[str]:
        """All accepted keys in stored form; plain keys are hashed here."""
        hashes = [hash_key(k) for k in self.api_keys]
        if self.api_keys_file is not None:
            hashes += read_key_file(self.api_keys_file)
        return hashes


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
