"""The server's state: the one model slot (loading, ready or refused), batcher and logger.

The model is loaded in the background after startup so that liveness answers at once; until
it is verified and loaded, readiness is false and inference answers 503 with the reason.
A refused model (digest mismatch, incompatible scikit-learn, bad manifest, missing version)
stays refused: the pod stays unready and the log says why. Only transient S3 failures are
retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import sklearn
from starlette.requests import ClientDisconnect

from continuum.errors import (
    AccessDenied,
    CertificateNotTrusted,
    ContinuumError,
    ObjectNotFound,
    StorageError,
)
from continuum.server.batching import Batcher
from continuum.server.errors import ModelNotFound, ServerUnavailable, ServingError
from continuum.server.feedback import FeedbackWriter
from continuum.server.inference_log import InferenceLogger
from continuum.server.inputs import FeatureRows
from continuum.server.metrics import ServerMetrics
from continuum.server.model import Prediction, ServedModel, load_served_model
from continuum.server.rollout import Rollout, RolloutSettings, Side, VersionTally, check_pair
from continuum.server.settings import ServerSettings
from continuum.storage import ObjectStore

log = logging.getLogger(__name__)

Loader = Callable[[ObjectStore, str, int], ServedModel]
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # then every 30 s: transient S3 trouble only
# Storage errors that waiting will not fix: the server refuses at once and says why.
_NOT_RETRIED = (ObjectNotFound, AccessDenied, CertificateNotTrusted)
CLIENT_CLOSED = 499  # the status metrics record for a client that left mid-request (as nginx)


class ModelServer:
    def __init__(
        self,
        settings: ServerSettings,
        store: ObjectStore,
        *,
        loader: Loader = load_served_model,
        rollout: RolloutSettings | None = None,
    ) -> None:
        self.settings = settings
        # issue 18: a candidate beside the champion (server/rollout.py); None outside a rollout
        self.rollout_settings = rollout or RolloutSettings()
        self.rollout: Rollout | None = None
        self.store = store
        self.metrics = ServerMetrics(settings.model, settings.version)
        self.model: ServedModel | None = None
        self.batcher: Batcher | None = None
        self.logger: InferenceLogger | None = None
        self.feedback: FeedbackWriter | None = None
        self.not_ready_reason = f"loading model {self.target}"
        self.load_finished = asyncio.Event()
        self._loader = loader
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0

    @property
    def target(self) -> str:
        return f"{self.settings.model}/{self.settings.version}"

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._load(), name="load-model"))

    async def stop(self) -> None:
        if self.rollout is not None:
            await self.rollout.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.logger is not None:
            await asyncio.to_thread(self.logger.stop)
        if self.feedback is not None:
            await asyncio.to_thread(self.feedback.stop)

    async def _load(self) -> None:
        model = await self._load_with_retries()
        candidate = await self._load_candidate(model)
        if model is not None and (candidate is not None or self.rollout_settings.candidate is None):
            self._serve(model)
            if candidate is not None:
                self._serve_candidate(model, candidate)
            freeze_heap()
        self.load_finished.set()

    async def _load_candidate(self, champion: ServedModel | None) -> ServedModel | None:
        """The rollout's candidate, verified like the champion; None refuses the pod."""
        version = self.rollout_settings.candidate
        if champion is None or version is None:
            return None
        candidate = await self._load_with_retries(version)
        problem = None if candidate is None else check_pair(champion, candidate)
        return candidate if problem is None else self._refuse(problem)

    async def _load_with_retries(self, version: int | None = None) -> ServedModel | None:
        model, version = self.settings.model, version or self.settings.version
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(self._loader, self.store, model, version)
            except StorageError as exc:
                if isinstance(exc, _NOT_RETRIED):
                    return self._refuse(exc.message, version)
                await self._back_off(attempt, exc)
            except ContinuumError as exc:
                return self._refuse(exc.message, version)
            except Exception as exc:  # a loader bug must not leave a half-ready server
                return self._refuse(f"{type(exc).__name__}: {exc}", version)
            attempt += 1

    async def _back_off(self, attempt: int, exc: StorageError) -> None:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
        log.warning("loading model %s failed, retrying in %.0fs: %s", self.target, delay, exc)
        await asyncio.sleep(delay)

    def _refuse(self, reason: str, version: int | None = None) -> ServedModel | None:
        """Fail closed: stay unready, and say why in the log and the readiness answer."""
        what = self.target
        if version is not None and version != self.settings.version:
            what = f"{self.target} beside candidate {self.settings.model}/{version}"
        self.not_ready_reason = f"refusing to serve model {what}: {reason}"
        log.error("%s", self.not_ready_reason)
        return None

    def _serve(self, model: ServedModel) -> None:
        settings = self.settings
        self.batcher = Batcher(
            model.predict,
            max_batch_size=settings.max_batch_size,
            max_latency=settings.max_latency_ms / 1000,
            on_batch=self.metrics.batch,
        )
        self._tasks.append(asyncio.create_task(self.batcher.run(), name="batcher"))
        if settings.inference_log.enabled:
            self.logger = InferenceLogger(
                self.store, model.name, model.version, settings.inference_log, self.metrics
            )
            self.logger.check_policy(model.feature_names)
            self.logger.start()
        # Labels are taken whether or not inference is logged, with the log's buffer settings.
        self.feedback = FeedbackWriter(self.store, model, settings.inference_log, self.metrics)
        self.feedback.start()
        self.model = model
        self.metrics.model_loaded(model, sklearn.__version__)
        log.info("serving model %s (sha256 %s)", self.target, model.sha256)
        _log_scoring(self.target, model)

    def _serve_candidate(self, champion: ServedModel, candidate: ServedModel) -> None:
        settings, rollout = self.settings, self.rollout_settings
        batcher = Batcher(
            candidate.predict,
            max_batch_size=settings.max_batch_size,
            max_latency=settings.max_latency_ms / 1000,
        )
        self._tasks.append(asyncio.create_task(batcher.run(), name="candidate-batcher"))
        assert self.batcher is not None  # set by _serve, just before
        self.rollout = Rollout(
            rollout,
            Side(champion, self.batcher, VersionTally(champion.version)),
            Side(candidate, batcher, VersionTally(candidate.version)),
        )
        log.info("candidate %s/%s (sha256 %s) beside the champion: answers %d%% (step %s)",
                 candidate.name, candidate.version, candidate.sha256, rollout.weight,
                 rollout.step)  # fmt: skip
        _log_scoring(f"{candidate.name}/{candidate.version}", candidate)

    def require(self, name: str, version: str | None = None) -> ServedModel:
        """The served model if ``name``/``version`` designate it; 404 or 503 otherwise."""
        self.require_name(name, version)
        if self.model is None:
            raise ServerUnavailable(self.not_ready_reason)
        return self.model

    def require_name(self, name: str, version: str | None) -> None:
        """404 unless ``name`` (and ``version``, if given) designate the model served here."""
        if name != self.settings.model:
            raise ModelNotFound(
                f"model {name!r} is not served here (this server serves {self.target})"
            )
        if version is not None and version != str(self.settings.version):
            raise ModelNotFound(f"model {name!r} has no version {version!r} here ({self.target})")

    def ready_batcher(self) -> Batcher:
        if self.batcher is None:
            raise ServerUnavailable(self.not_ready_reason)
        return self.batcher

    def ready_feedback(self) -> FeedbackWriter:
        if self.feedback is None:
            raise ServerUnavailable(self.not_ready_reason)
        return self.feedback

    def served(self, request_id: str, rows: FeatureRows, prediction: Prediction) -> None:
        """After a prediction: metrics of the predicted values, and the inference log."""
        if self.model is not None:
            self.metrics.predicted(self.model, prediction.labels)
        if self.logger is not None:
            self.logger.log(request_id, rows, prediction)

    @asynccontextmanager
    async def inference(self, endpoint: str) -> AsyncIterator[None]:
        """Bound concurrency, count in-flight requests and record status and latency."""
        started, status = time.perf_counter(), 200
        self._in_flight += 1
        self.metrics.in_flight.inc()
        try:
            if self._in_flight > self.settings.max_concurrent_requests:
                limit = self.settings.max_concurrent_requests
                raise ServerUnavailable(
                    f"server busy: more than {limit} requests in flight; retry later"
                )
            yield
        except ServingError as exc:
            status = exc.status_code
            raise
        except ClientDisconnect:
            status = CLIENT_CLOSED  # gone before its answer: not a server error
            raise
        except BaseException:
            status = 500
            raise
        finally:
            self._in_flight -= 1
            self.metrics.in_flight.dec()
            self.metrics.request_done(endpoint, status, time.perf_counter() - started)


def freeze_heap() -> None:
    """Take everything alive once the model is loaded out of the garbage collector's sight.

    The server's heap is some 240,000 objects after loading (numpy, pandas, scipy,
    scikit-learn, FastAPI, the pipeline), nearly all of them alive until the process ends;
    the collector's oldest generation walks them all whenever it runs, on the event loop, and
    every request waiting meanwhile waits for it. Under ``wrk -c64`` on the demo's model (one
    pinned CPU, 2026-12-04) that was a p99 of 94-164 ms against a p50 of 5 ms; with the heap
    frozen here (collected first, so no garbage is kept), p99 6.5-12.5 ms, and 76-80 us of
    CPU per request instead of 83-92. Objects made later (requests, their rows) are
    collected as before.
    """
    gc.collect()
    gc.freeze()
    log.info("heap frozen after loading: %d objects left out of garbage collection",
             gc.get_freeze_count())  # fmt: skip


def _log_scoring(target: str, model: ServedModel) -> None:
    """One line: which path scores the model and why (a warning when it is not compiled)."""
    verdict = model.scoring
    if verdict.compiled:
        classes = f", classes {verdict.classes_covered}" if verdict.classes_covered else ""
        log.info("model %s is scored by the compiled path: %s, %s%s",
                 target, verdict.entry, verdict.reason, classes)  # fmt: skip
    else:
        log.warning("model %s is scored by scikit-learn's own steps (slower): %s",
                    target, verdict.reason)  # fmt: skip
