"""Hold the decider the service answers with; load it once, reload it atomically.

The decision artifact is loaded by ``training.tracking.loading.load_artifact(uri_or_path)`` (MLflow
model URI such as ``models:/smart-retry@champion``, or a local path) and wrapped in
:class:`serving.artifact_decider.ArtifactDecider` (known customers, description). When no source is
configured or loading fails, the service answers
with the rules fallback and says so on ``/readyz`` and ``/v1/model``.

A reload builds the new decider completely and then swaps one attribute, so a request in
flight keeps the decider it started with and the next request gets the new one; a
failed reload keeps the current decider and records the error.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from serving.artifact_decider import load_artifact_decider
from training.config.quiet_hours import QuietHours
from training.policy.decisions import Decider

logger = logging.getLogger(__name__)

Loader = Callable[[str], Decider]


def load_decider(
    source: str,
    threads: int = 1,
    quiet_hours: QuietHours | None = None,
    warm_up: bool = True,
) -> Decider:
    """Load a decision artifact, wrapped so the service also gets the artifact's known
    customers and description (:class:`serving.artifact_decider.ArtifactDecider`);
    ``threads``: LightGBM threads for big scoring calls (batches); ``quiet_hours``: the
    operator's override (``SMARTRETRY_QUIET_*_HOUR``); ``warm_up``: fill the decision
    memos before the first request (``SMARTRETRY_MODEL_WARM_UP``)."""
    return load_artifact_decider(source, threads=threads, quiet_hours=quiet_hours, warm_up=warm_up)


def freeze_heap() -> None:
    """Exempt everything alive now (the model, the imported libraries) from the cyclic
    garbage collector.

    A full collection walks every tracked object: about 200 ms in a serving process, a
    pause (every few hundred requests in the benchmarks) that every request in flight
    waits for. Frozen
    objects are still freed by reference counting. After a reload: unfreeze, collect
    (frees the replaced model's reference cycles), freeze again.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Loaded:
    decider: Decider
    source: str | None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ModelHolder:
    """The current decider; ``current`` is read once per request."""

    def __init__(
        self, source: str | None, fallback: Decider, loader: Loader = load_decider
    ) -> None:
        self.source = source
        self.fallback = fallback
        self.loader = loader
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self.current = Loaded(fallback, None)

    def load(self) -> bool:
        """Initial load at startup: the configured model, else the fallback. Never raises."""
        if self.source is None:
            self.last_error = "no model configured"
            logger.warning("no model configured: answering with the rules fallback")
            ok = False
        else:
            ok = self._swap(self.source)
        freeze_heap()
        return ok

    def reload(self, source: str | None = None) -> bool:
        """Load ``source`` (default: the configured one) and swap it in; keep the old on failure."""
        ok = self._swap(source)
        if ok:
            freeze_heap()
        return ok

    def _swap(self, source: str | None) -> bool:
        source = source or self.source
        with self._lock:
            if source is None:
                self.last_error = "no model configured"
                return False
            try:
                decider = self.loader(source)
            except Exception as error:  # any loader failure keeps the current decider
                self.last_error = f"{type(error).__name__}: {error}"
                logger.warning(
                    "model load from %s failed, keeping %s: %s",
                    source,
                    self.current.decider.model_version,
                    self.last_error,
                )
                return False
            self.current = Loaded(decider, source)
            self.source = source
            self.last_error = None
            logger.info("model %s loaded from %s", decider.model_version, source)
            return True
