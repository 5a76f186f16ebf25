"""The composition root for `gridwatch run`: settings, stores, detector, rules, patrol and the API, in order."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
import yaml
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from api.app import ApiDeps, create_app
from api.auth import AuthConfig
from core.clock import SystemClock
from core.errors import ConfigError
from core.events import Event, Severity
from core.settings import ApiSettings, Settings
from core.sink import EventSink
from core.types import VisitKind
from core.yamlconf import format_loc, load_yaml_text, validation_problems
from detectors.batcher import MicroBatcher
from detectors.detector import Detector
from detectors.session import create_session, default_workers, usable_cores
from gridwatch import __version__
from gridwatch.intake_setup import EVIDENCE_DIR, Intake, build_intake, store_targets
from gridwatch.modelstore import resolve_model
from gridwatch.patrol_view import RuntimePatrolView, Telemetries
from gridwatch.redis_setup import RedisParts, make_scheduler
from gridwatch.rulestate import RULE_STATE_FILE, load_rule_state, save_rule_state
from gridwatch.sensors_setup import Sensors, build_sensors
from incidents.events import RuleFacts, incident_event
from incidents.tracker import IncidentChange, IncidentTracker
from ingest.camera_check import CameraChecks, CheckRequest, CheckResult
from ingest.cameras import Camera, load_cameras
from ingest.gating import ChangeGate
from ingest.grabber import Grabber, GrabTimeouts
from ingest.health import RULE as HEALTH_RULE
from ingest.health import RULE_ID, CameraHealthIncidents
from ingest.linkage import EvidenceRequests, link_cameras
from ingest.patrol import Patrol
from ingest.recheck import DelayedRequests, Rechecks
from ingest.scheduler import BackoffPolicy, HealthChange
from ingest.sensor_ingest import place_of_sensor
from ingest.sensors import Sensor
from ingest.visit import VisitPipeline, facts_of, place_of
from intake.bus import CaseBus, EventBus
from intake.camera_check import camera_checked
from intake.case_model import Case, CaseState, Source
from intake.evidence import EvidenceStore
from intake.handoff import QueuedSink
from intake.redis_stream import StreamConsumer
from intake.sink import IntakeSink
from intake.store import EventStore
from intake.suppressions import SuppressionStore
from rules.categories import CategoryTable, default_categories, load_categories
from rules.engine import RuleEngine
from rules.exclusion import ExclusionTable
from rules.registry import KINDS
from rules.reload import RuleReloader
from rules.ruleset import RuleSet
from rules.schema import BaseRule
from rules.state import InMemoryRuleState, RuleStateStore
from rules.tracker import TrackerConfig

logger = logging.getLogger(__name__)


def load_settings(config_dir: Path | None, host: str | None = None, port: int | None = None) -> Settings:
    """`settings.yaml` from the config folder (optional), overridden by GRIDWATCH_* variables and flags."""
    data: dict[str, object] = {}
    node = None
    path = config_dir / "settings.yaml" if config_dir else None
    if path is not None and path.exists():
        raw, node = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError([f"{path}:1:1: (top): expected a mapping"])
        data = raw or {}
    try:
        settings = Settings(**data)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_settings_problems(exc, node, str(path or "settings.yaml"))) from None
    flags = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if flags:
        try:
            settings.api = ApiSettings.model_validate({**settings.api.model_dump(), **flags})
        except ValidationError as exc:
            # a field's error names its flag; the unsafe-bind check is about the whole section, so --host
            problems = [f"--{(e['loc'] or ('host',))[0]}: {e['msg']}" for e in exc.errors(include_url=False)]
            raise ConfigError(problems) from None
    return settings


def _settings_problems(exc: ValidationError, node: yaml.Node | None, path: str) -> list[str]:
    """Each problem at its settings.yaml line, or at the GRIDWATCH_* variable that set the value."""
    problems = []
    for error in exc.errors(include_url=False):
        variable = "GRIDWATCH_" + "__".join(str(part) for part in error["loc"]).upper()
        if variable in os.environ:
            problems.append(f"{variable}: {format_loc(error['loc'])}: {error['msg']}")
        else:
            single = ValidationError.from_exception_data(exc.title, [error])  # type: ignore[list-item]
            problems.extend(validation_problems(single, node, path))
    return problems


class RulesHolder:
    """The running rule engine; a changed rule folder is recompiled, a bad one keeps the last good engine.

    Rule state and incidents outlive a reload for rules whose definition did not change; the incidents of changed
    or removed rules are closed and handed to `deliver` (which says whether the intake took them); what it could
    not take is tried again at every poll. `exclusions` reads the confirmed suppression masks; a change among them
    is taken at the next poll (the rules stay as they are, with their state and incidents).
    """

    def __init__(
        self,
        rules_dir: Path,
        labels: list[str],
        cameras: Sequence[Camera] = (),
        *,
        categories: CategoryTable | None = None,
        incidents: IncidentTracker | None = None,
        deliver: Callable[[IncidentChange, RuleFacts], bool] | None = None,
        state: RuleStateStore | None = None,
        exclusions: Callable[[], ExclusionTable] | None = None,
    ) -> None:
        self._dir, self._labels = rules_dir, labels
        self._read_exclusions = exclusions
        self._exclusions: ExclusionTable = exclusions() if exclusions is not None else {}
        self._modes: dict[str, VisitKind] = {c.id: c.mode for c in cameras}
        # seconds between the frames of each burst camera's visits (and of a continuous camera's samples)
        self._spacing = {c.id: c.burst_span_s / (c.burst_frames - 1) for c in cameras if c.mode == "burst"}
        self._spacing |= {c.id: 1.0 / c.sample_fps for c in cameras if c.mode == "continuous"}
        self._categories = categories if categories is not None else default_categories()
        self.state: RuleStateStore = state if state is not None else InMemoryRuleState()
        self.incidents = incidents if incidents is not None else IncidentTracker()
        self._deliver = deliver
        self._closing: list[tuple[IncidentChange, RuleFacts]] = []  # reload closes the intake has not taken yet
        self._reloader = RuleReloader()
        problems = self._reloader.reload([rules_dir])
        if problems:
            raise ConfigError(problems)
        self._engine = self._compile(self._reloader.current)
        self._digest = self._reloader.current.digest
        self.errors: list[str] = []
        self.warnings = self._warnings(self._engine)

    def _compile(self, ruleset: RuleSet) -> RuleEngine:
        engine = RuleEngine(
            ruleset, self._labels, categories=self._categories, state=self.state, exclusions=self._exclusions
        )
        errors, _ = engine.motion_problems(self._modes)
        if errors:
            raise ConfigError(errors)
        return engine

    def _warnings(self, engine: RuleEngine) -> list[str]:
        """Rules naming a camera id that `cameras.yaml` lacks (a typo there silently never matches), and rules
        that skip keyframe cameras."""
        if not self._modes:
            return []
        ruleset = engine.ruleset
        warnings = [
            f"{ruleset.locate(rule.id, ('cameras', i))}: camera {cam!r} is not in cameras.yaml"
            for rule in ruleset.rules
            if isinstance(rule, BaseRule)
            for i, cam in enumerate(rule.cameras)
            if cam != "*" and cam not in self._modes
        ]
        warnings += engine.motion_problems(self._modes)[1]
        warnings += self._sparse_bursts(engine)
        for line in warnings:
            logger.warning("%s", line)
        return warnings

    def _sparse_bursts(self, engine: RuleEngine) -> list[str]:
        """Burst cameras whose frames are too far apart for the tracker of the rules that need motion."""
        gap = TrackerConfig().max_gap_s
        out = []
        for rule in engine.ruleset.rules:
            if not isinstance(rule, BaseRule) or not KINDS[rule.kind].needs_motion:
                continue
            for cam, spacing in sorted(self._spacing.items()):
                if rule.covers(cam) and spacing > gap:
                    out.append(
                        f"{engine.ruleset.locate(rule.id, ('cameras',))}: camera {cam!r} takes a burst frame every "
                        f"{spacing:.1f} s; {rule.kind} tracks objects only between frames at most {gap:g} s apart: "
                        "raise its burst_frames or shorten burst_span_s"
                    )
        return out

    def engine(self) -> RuleEngine:
        return self._engine

    def flush_closes(self) -> int:
        """Hand the closes of a reload to the intake; those it cannot take now wait for the next poll."""
        if self._deliver is not None:
            self._closing = [(c, f) for c, f in self._closing if not self._deliver(c, f)]
        return len(self._closing)

    def poll(self) -> None:
        self.flush_closes()
        self._poll_exclusions()
        problems = self._reloader.reload([self._dir])
        if problems:
            if problems != self.errors:
                logger.error("rules not reloaded, the last good rules keep running:\n%s", "\n".join(problems))
            self.errors = problems
            return
        current = self._reloader.current
        if current.digest == self._digest:
            self.errors = []
            return
        try:
            engine = self._compile(current)
        except ConfigError as exc:
            if exc.problems != self.errors:
                logger.error("rules not reloaded, the last good rules keep running:\n%s", "\n".join(exc.problems))
            self.errors = exc.problems
            return
        self._swap(engine, current.digest)

    def _poll_exclusions(self) -> None:
        """Recompile the running rules when the confirmed suppressions changed; the rules' state carries over."""
        if self._read_exclusions is None:
            return
        found = self._read_exclusions()
        if found == self._exclusions:
            return
        self._exclusions = found
        self._engine = self._compile(self._engine.ruleset)
        logger.info("suppressions reloaded: %d masks on %d (rule, camera)", sum(map(len, found.values())), len(found))

    def facts(self) -> dict[str, RuleFacts]:
        """What the events of the running rules say about their rule, by rule id."""
        return {rule.id: facts_of(rule) for rule in self._engine.ruleset.rules}

    def _swap(self, engine: RuleEngine, digest: str) -> None:
        before = self.facts()
        self._engine, self._digest, self.errors = engine, digest, []
        self.state.retain(engine.fingerprints)
        running = {rule.id: rule.fingerprint() for rule in engine.ruleset.rules if rule.enabled}
        closed = self.incidents.retain(running, datetime.now(UTC))
        unknown = RuleFacts("", "", "", Severity.info)
        self._closing += [(c, before.get(c.rule_id, replace(unknown, id=c.rule_id))) for c in closed]
        self.flush_closes()
        self.warnings = self._warnings(engine)
        logger.info("rules reloaded: %d rules, %d incidents of changed rules closed", len(running), len(closed))

    def status(self) -> dict[str, object]:
        """The running rules (not a rejected newer set), the problems that kept a reload out, and how many
        incidents are open and (rule, camera) states are kept."""
        return {
            "rules": len(self._engine.ruleset.rules),
            "errors": self.errors,
            "warnings": self.warnings,
            "open_incidents": len(self.incidents.open_incidents()),
            "states": len(self.state),
        }


@dataclass
class Runtime:
    settings: Settings
    patrol: Patrol
    batcher: MicroBatcher
    rules: RulesHolder
    store: EventStore
    bus: EventBus
    app: FastAPI
    stop_event: threading.Event
    # at stop, after the patrol: closes what is open, since nobody will see whether it goes on
    close_incidents: Callable[[], None] = lambda: None
    intake: Intake | None = None
    handoff: QueuedSink | None = None
    stream: StreamConsumer | None = None  # patrol.backend redis: the workers' events, into this intake
    sensors: Sensors | None = None
    linkage: EvidenceRequests | None = None  # sensor alarms waiting for their linked cameras' snapshots
    delayed: DelayedRequests | None = None  # re-check visits asked for later
    rechecks: Rechecks | None = None

    def start(self) -> None:
        if self.intake is not None:
            self.intake.start()
        if self.stream is not None:
            self.stream.start()
        self.patrol.start()
        if self.sensors is not None:
            self.sensors.start()
        threading.Thread(target=self._poll_rules, name="rules-reload", daemon=True).start()
        threading.Thread(target=self._save_rule_state_loop, name="rule-state-save", daemon=True).start()

    def _poll_rules(self) -> None:
        while not self.stop_event.wait(self.settings.patrol.rules_poll_s):
            try:
                self.rules.poll()
            except Exception:  # loop boundary: hot reload must outlive any one bad file
                logger.exception("rules reload failed; the last good rules keep running")

    def _save_rule_state_loop(self) -> None:
        while not self.stop_event.wait(self.settings.patrol.rule_state_save_s):
            try:
                self.save_rule_state()
            except Exception:  # loop boundary: a failed save is tried again at the next interval
                logger.exception("rule state not saved")

    def save_rule_state(self) -> None:
        """Learned rule state (baselines) to `data_dir/rule-state.json`; a full disk is logged, not raised."""
        path = self.settings.data_dir / RULE_STATE_FILE
        if not isinstance(self.rules.state, InMemoryRuleState):
            return  # shared rule state lives in Redis
        try:
            save_rule_state(path, self.rules.engine(), self.rules.state)
        except OSError as exc:
            logger.warning("rule state not saved to %s: %s", path, exc)

    def stop(self) -> None:
        self.stop_event.set()
        if self.delayed is not None:
            self.delayed.close()
        if self.sensors is not None:
            self.sensors.stop()
        self.patrol.stop()
        if self.handoff is not None:
            self.handoff.stop()  # what the patrol handed off, into the event store
        try:
            self.close_incidents()  # straight into the store: the hand-off has stopped
        except Exception:  # stopping goes on: the store and the state are still to be closed and saved
            logger.exception("open incidents not closed at stop")
        if self.stream is not None:
            self.stream.stop()
        self.save_rule_state()
        if self.intake is not None:
            self.intake.stop()
        self.batcher.close()
        self.bus.close()
        self.store.close()

    def health(self) -> dict[str, object]:
        b = self.batcher
        inference = {
            "workers": b.workers,
            "queue_depth": b.queue_depth,
            "batches": b.stats.batches,
            "frames": b.stats.frames,
        }
        intake = self.intake.health() if self.intake is not None else {}
        if self.handoff is not None:
            intake = {**intake, "handoff": self.handoff.snapshot()}
        if self.stream is not None:
            intake = {**intake, "stream": self.stream.health()}
        sensors = self.sensors.health() if self.sensors is not None else None
        if sensors is not None and self.linkage is not None:
            sensors = {**sensors, "linkage": self.linkage.report()}
        return {
            **self.patrol.health(),
            "inference": inference,
            "rules": self.rules.status(),
            "intake": intake,
            "sensors": sensors,
            "rechecks": self.rechecks.report() if self.rechecks is not None else None,
        }


def build_detector(settings: Settings) -> Detector:
    """The configured model on its ONNX Runtime session; a missing or corrupt file says how to fetch it."""
    manifest, weights = resolve_model(settings.models_dir, settings.detector.model)
    det = settings.detector
    session = create_session(weights, det.providers, det.intra_op_threads)
    return Detector(session, manifest, conf_threshold=det.conf_threshold, nms_iou=det.nms_iou)


def inference_workers(settings: Settings, providers: list[str]) -> int:
    """Concurrent inference runs: as set, or one per usable core on CPU / 2 on a GPU. Each patrol worker waits
    for its own frame's inference, so more runs than `patrol.max_in_flight` could never all be busy."""
    det, in_flight = settings.detector, settings.patrol.max_in_flight
    if det.inference_workers is None:
        return min(default_workers(providers, det.intra_op_threads, usable_cores()), in_flight)
    if det.inference_workers > in_flight:
        logger.warning(
            "detector.inference_workers %d > patrol.max_in_flight %d: at most %d inferences can run at once",
            det.inference_workers,
            in_flight,
            in_flight,
        )
    return det.inference_workers


def build_runtime(config_dir: Path, settings: Settings) -> Runtime:
    cameras = load_cameras(config_dir / "cameras.yaml")
    detector = build_detector(settings)
    det = settings.detector
    workers = inference_workers(settings, detector.providers)
    batcher = MicroBatcher(
        detector, max_batch=det.max_batch, max_wait_ms=det.max_wait_ms, max_queue=det.max_queue, workers=workers
    )
    logger.info(
        "inference: %d concurrent run(s) on %s, %d intra-op thread(s) each",
        workers,
        detector.providers[0],
        det.intra_op_threads,
    )
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    store, evidence, bus = EventStore(store_targets(settings)[0]), EvidenceStore(data / EVIDENCE_DIR), EventBus()
    logger.info("events in %s", store.db.label)
    clock = SystemClock()
    sink: EventSink = IntakeSink(store, evidence, bus)
    by_id = {c.id: c for c in cameras}
    sensor_by_id: dict[str, Sensor] = {}
    categories = load_categories(config_dir)
    case_bus = CaseBus()  # the wall's live case tiles; its streams end with `bus`'s at stop
    checks = CameraChecks()

    def on_case(case: Case) -> None:
        case_bus.publish(case)
        camera_id = case.reporter.camera_id
        if not settings.intake.check_by_camera:
            return
        if case.state != CaseState.handled or case.source != Source.camera or camera_id not in by_id:
            return
        request = CheckRequest(case.id, camera_id, case.reporter.rule_id, case.zone, clock.now())
        if checks.add(request) and not scheduler.request_visit(camera_id):
            logger.info("case %s: camera %s is not in the round; its next frame checks it", case.number, camera_id)

    intake = (
        build_intake(config_dir, settings, store, categories, clock, on_change=on_case)
        if settings.intake.cases
        else None
    )
    if intake is not None:
        sink = NotifyingSink(sink, intake.feed.notify)
    stored = sink  # what the closes at stop go through, after the hand-off has drained
    shared = RedisParts.connect(settings)  # patrol.backend redis: the patrol's events go round through the stream
    handoff = QueuedSink(shared.event_sink() if shared else sink, maxsize=settings.intake.handoff_queue)
    stream = shared.consumer(stored) if shared else None
    sink = handoff
    rules = RulesHolder(
        config_dir / "rules",
        detector.labels,
        cameras,
        categories=categories,
        deliver=lambda change, facts: deliver_close(sink, change, facts, by_id, sensor_by_id),
        state=shared.rule_state() if shared else None,
        incidents=IncidentTracker(shared.incidents()) if shared else None,
        exclusions=SuppressionStore(intake.cases).exclusions if intake is not None else None,
    )
    if isinstance(rules.state, InMemoryRuleState):
        load_rule_state(data / RULE_STATE_FILE, rules.engine(), rules.state)
    health = CameraHealthIncidents(IncidentTracker(shared.incidents()) if shared else None)

    def on_health(camera: Camera, change: HealthChange) -> None:
        health.report(camera, change, clock.now(), sink)

    p = settings.patrol
    pipeline, backoff = visit_parts(settings, batcher, rules, sink, clock, evidence=EvidenceRequests())
    scheduler = make_scheduler(
        shared,
        [c for c in cameras if c.mode != "continuous"],
        clock.monotonic,
        lambda: clock.now().timestamp(),
        backoff,
    )
    if intake is not None:
        checks.on_result = lambda result: _apply_check(intake, evidence, result)
        pipeline.checks = checks
    delayed = DelayedRequests(scheduler.request_visit)  # re-check visits before filing, `recheck.after_s` later
    pipeline.rechecks = Rechecks(delayed.later)
    patrol = Patrol(
        scheduler,
        pipeline,
        workers=p.max_in_flight,
        pressure=lambda: batcher.saturated,
        on_health=on_health,
        continuous=[c for c in cameras if c.mode == "continuous"],
        timeouts=grab_timeouts(settings),
    )
    telemetries = Telemetries(lambda: batcher.queue_depth, handoff, store=store)
    if intake is not None:
        telemetries.outbox, telemetries.feed = intake.outbox, intake.feed
    linked = pipeline.evidence

    def on_sensor_open(sensor: Sensor, event: Event) -> None:
        if linked is not None and sensor.cameras:
            link_cameras(linked, scheduler.request_visit, sensor.cameras, event, clock.now())

    sensors = build_sensors(
        config_dir,
        settings.sensors,
        list(by_id),
        rules.engine,
        sink,
        clock,
        incidents=rules.incidents,
        on_open=on_sensor_open,
    )
    if sensors is not None:
        sensor_by_id.update(sensors.ingest.sensors)
    runtime_ref: list[Runtime] = []
    app = create_app(
        ApiDeps(
            store=store,
            evidence=evidence,
            bus=bus,
            health=lambda: runtime_ref[0].health(),
            version=__version__,
            auth=AuthConfig.from_settings(settings.api),
            cases=intake.cases if intake is not None else None,
            case_bus=case_bus,
            inbound_secret=_secret(settings.intake.inbound_secret),
            patrol=RuntimePatrolView(patrol, scheduler, cameras, clock, telemetries),
            readings=sensors.ingest if sensors is not None else None,
        )
    )

    def close_incidents() -> None:
        at, facts = clock.now(), rules.facts()
        health_facts = {RULE_ID: HEALTH_RULE}
        for tracker, known in ((rules.incidents, facts), (health.tracker, health_facts)):
            for change in tracker.close_all("gridwatch stopped", at):
                rule = known.get(change.rule_id, RuleFacts(change.rule_id, "", "", Severity.info))
                deliver_close(stored, change, rule, by_id, sensor_by_id)

    runtime = Runtime(
        settings,
        patrol,
        batcher,
        rules,
        store,
        bus,
        app,
        threading.Event(),
        close_incidents,
        intake,
        handoff,
        stream,
        sensors,
        linked,
        delayed,
        pipeline.rechecks,
    )
    runtime_ref.append(runtime)
    logger.info("%d cameras, %d rules, model %s", len(cameras), len(rules.engine().ruleset.rules), detector.name)
    return runtime


def grab_timeouts(settings: Settings) -> GrabTimeouts:
    p = settings.patrol
    return GrabTimeouts(open_s=p.open_timeout_s, read_s=p.read_timeout_s, keyframe_s=p.keyframe_timeout_s)


def visit_parts(
    settings: Settings,
    detector: MicroBatcher,
    rules: RulesHolder,
    sink: EventSink,
    clock: SystemClock,
    evidence: EvidenceRequests | None = None,
) -> tuple[VisitPipeline, BackoffPolicy]:
    """The visit pipeline (grabber with the patrol's timeouts, change gating) and the backoff of failing cameras,
    as `gridwatch run` and `gridwatch worker` both patrol with them."""
    p = settings.patrol
    pipeline = VisitPipeline(
        grabber=Grabber(grab_timeouts(settings)),
        detector=detector,
        engine=rules.engine,
        incidents=rules.incidents,
        sink=sink,
        clock=clock,
        jpeg_quality=settings.evidence.jpeg_quality,
        gate=ChangeGate(settings.gating),
        evidence=evidence,
    )
    backoff = BackoffPolicy(base_s=p.backoff_base_s, max_s=p.backoff_max_s, offline_after=p.offline_after_failures)
    return pipeline, backoff


class NotifyingSink:
    """The intake sink that, once an event is stored, tells the case feed to look (without waiting for it)."""

    def __init__(self, sink: EventSink, notify: Callable[[], None]) -> None:
        self._sink, self._notify = sink, notify

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None:
        self._sink.emit(event, blobs)
        self._notify()


def _apply_check(intake: Intake, evidence: EvidenceStore, result: CheckResult) -> None:
    """A camera's check of a handled case: its frames into the evidence store, then the case's step."""
    for key, data in result.snapshot.blobs.items():
        evidence.put_keyed(key, data)
    request = result.request
    case = camera_checked(
        intake.cases, request.case_id, request.camera_id, result.still_there, result.snapshot.evidence, result.at
    )
    if case is not None:
        logger.info("case %s checked by camera %s: %s", case.number, request.camera_id, case.state.value)


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def deliver_close(
    sink: EventSink,
    change: IncidentChange,
    facts: RuleFacts,
    cameras: dict[str, Camera],
    sensors: Mapping[str, Sensor] | None = None,
) -> bool:
    """Hand one close (of a reload or of the patrol stopping) to the intake; False when it could not take it.
    The incident of a sensor rule is its sensor's (the tracker keys it by the sensor id)."""
    spec = KINDS.get(facts.kind)
    if spec is not None and spec.subject == "sensor":
        sensor = (sensors or {}).get(change.camera_id) or Sensor(id=change.camera_id, kind="unknown")
        place = place_of_sensor(sensor)
    else:
        place = place_of(cameras.get(change.camera_id) or Camera(id=change.camera_id, url="file:///dev/null"))
    try:
        sink.emit(incident_event(change, facts, place, None), {})
    except Exception:  # the intake's failure: the caller keeps the close and tries again
        logger.exception("close of incident %s (rule %s) not delivered", change.incident_id, change.rule_id)
        return False
    return True


def run_forever(config_dir: Path, settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. Open alert-wall streams get a short grace period, then are closed."""
    runtime = build_runtime(config_dir, settings)
    runtime.start()
    host, port = settings.api.host, settings.api.port
    config = uvicorn.Config(
        runtime.app, host=host, port=port, log_level="warning", log_config=None, timeout_graceful_shutdown=2
    )
    logger.info("alert wall on http://%s:%d", host, port)
    try:
        uvicorn.Server(config).run()
    finally:
        runtime.stop()
