"""Settings: built once by the entry point from `settings.yaml` in the config folder and `GRIDWATCH_*` variables.

Environment variables win over the file (`GRIDWATCH_PATROL__MAX_IN_FLIGHT=8`). Nothing here is read at import time.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.passwords import parse_hash
from core.redact import sanitize_url


class DetectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "yolox-nano"
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: int = Field(default=1, ge=1, le=64)
    # concurrent inference runs on the one shared session; None: one per core on CPU, 2 on a GPU
    inference_workers: int | None = Field(default=None, ge=1, le=256)
    conf_threshold: float = Field(default=0.35, gt=0, lt=1)
    nms_iou: float = Field(default=0.45, gt=0, lt=1)
    # the micro-batcher shared by all patrol workers: up to max_batch frames or max_wait_ms per run
    # (dynamic-batch models only; 1 on CPU, 8-32 on a GPU), at most max_queue frames waiting
    max_batch: int = Field(default=1, ge=1, le=256)
    max_wait_ms: float = Field(default=10.0, ge=0, le=1000)
    max_queue: int = Field(default=64, ge=1, le=100_000)


class PatrolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_in_flight: int = Field(default=4, ge=1, le=1024)
    open_timeout_s: float = Field(default=5.0, gt=0, le=120)
    read_timeout_s: float = Field(default=5.0, gt=0, le=120)
    keyframe_timeout_s: float = Field(default=10.0, gt=0, le=300)
    backoff_base_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    offline_after_failures: int = Field(default=3, ge=1)
    rules_poll_s: float = Field(default=2.0, gt=0)
    # how often learned rule state (count_anomaly baselines) is saved to data_dir/rule-state.json; also at stop
    rule_state_save_s: float = Field(default=300.0, gt=0)
    # many workers, one patrol: `redis` shares due times, leases, rule state and incidents through Redis
    backend: Literal["inprocess", "redis"] = "inprocess"
    redis_url: SecretStr | None = None  # redis://[:password@]host:port/db; never logged (sanitised)
    redis_namespace: str = Field(default="gridwatch:", pattern=r"^[A-Za-z0-9_.:{}-]{1,64}$")
    lease_s: float = Field(default=30.0, gt=0, le=3600)  # a dead worker's cameras come back after this
    heartbeat_s: float = Field(default=5.0, gt=0, le=600)  # and live workers renew their leases this often

    @model_validator(mode="after")
    def _leases_outlive_heartbeats(self) -> PatrolSettings:
        if self.heartbeat_s * 2 >= self.lease_s:
            raise ValueError(f"heartbeat_s {self.heartbeat_s:g} must be under half of lease_s {self.lease_s:g}")
        return self


class GatingOverride(BaseModel):
    """Change gating settings of one camera; what is not given comes from the global `gating` settings."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    threshold: float | None = Field(default=None, gt=0, le=10)
    every_k: int | None = Field(default=None, ge=1, le=10_000)
    max_age_s: float | None = Field(default=None, gt=0)


class GatingSettings(BaseModel):
    """Change gating (ingest.gating): a keyframe visit whose picture is judged unchanged since the camera's last
    analysed frame skips inference and carries that frame's detections forward. `threshold`: the change score
    (normalised grey levels, see docs/configuration.md) above which a picture has changed; at least one visit in
    every `every_k` is analysed, and none carries detections older than `max_age_s`. `cameras`: overrides per
    camera id."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    threshold: float = Field(default=0.3, gt=0, le=10)
    every_k: int = Field(default=10, ge=1, le=10_000)
    max_age_s: float = Field(default=900.0, gt=0)
    cameras: dict[str, GatingOverride] = Field(default_factory=dict)

    def for_camera(self, camera_id: str) -> GatingSettings:
        """The settings that apply to one camera: its override over the global ones (no `cameras` of its own)."""
        found = self.cameras.get(camera_id)
        if found is None:
            return self if not self.cameras else self.model_copy(update={"cameras": {}})
        given = found.model_dump(exclude_none=True)
        return self.model_copy(update={**given, "cameras": {}})


class EvidenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jpeg_quality: int = Field(default=85, ge=30, le=100)


ApiRole = Literal["viewer", "operator", "rule_author", "admin"]
"""API roles, lowest first: each role may do everything the roles before it may."""
ROLES: tuple[ApiRole, ...] = ("viewer", "operator", "rule_author", "admin")


def role_at_least(role: ApiRole, needed: ApiRole) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


class ApiToken(BaseModel):
    """One API client: its name (logged, shown), its role, and the hex SHA-256 of its secret (never the secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    role: ApiRole
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class ApiAccount(BaseModel):
    """A named person's account for the alert wall: their role and the scrypt hash of their password (never the
    password; `gridwatch accounts hash` makes one). The account's name is its key in `api.accounts`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: ApiRole
    password_hash: SecretStr

    @field_validator("password_hash")
    @classmethod
    def _scrypt(cls, value: SecretStr) -> SecretStr:
        parse_hash(value.get_secret_value())  # ValueError says what is wrong, without the hash
        return value


ACCOUNT_NAME_PATTERN = r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.@\u4e00-\u9fff-]{0,63}$"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # empty: authentication is off, which only a loopback host (or allow_anonymous) permits
    tokens: list[ApiToken] = Field(default_factory=list)
    # operators' accounts by name: {role, password_hash}; signing in with name and password gives a session
    accounts: dict[str, ApiAccount] = Field(default_factory=dict)
    # key of the signed session cookie; none: a random key at each start (sessions end at restart)
    session_secret: SecretStr | None = None
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=7 * 24 * 3600)
    allow_anonymous: bool = False
    # failed credential checks per client address within the window before it is refused (429) for a while
    max_failed_auth: int = Field(default=10, ge=1, le=10_000)
    failed_auth_window_s: float = Field(default=60.0, gt=0, le=86_400)

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("should have at least 32 characters: make one with `openssl rand -base64 32`")
        return value

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)

    @model_validator(mode="after")
    def _safe(self) -> ApiSettings:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError(f"api.tokens: names must be unique, got {names}")
        for name in self.accounts:
            if not re.fullmatch(ACCOUNT_NAME_PATTERN, name):
                raise ValueError(f"api.accounts: name {name!r}: letters, digits, Chinese characters, _.@- (max 64)")
        if clash := sorted(set(names) & set(self.accounts)):
            raise ValueError(f"api.accounts: {clash} are also token names: the audit trail must tell them apart")
        if len({t.sha256 for t in self.tokens}) != len(self.tokens):
            raise ValueError("api.tokens: two tokens have the same sha256")
        if not self.tokens and not self.accounts and not self.allow_anonymous and not self.loopback:
            raise ValueError(
                f"api.host {self.host!r} is not a loopback address and api.tokens is empty: anyone on the network "
                "could read events and evidence. Configure api.tokens, bind to 127.0.0.1, or set "
                "api.allow_anonymous: true to serve without authentication on purpose"
            )
        return self


SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks spec: a random key of 24 to 64 bytes


def secret_key(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; ValueError (without the secret) when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    text = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"a webhook secret is {SECRET_PREFIX!r} and base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds at least {MIN_SECRET_BYTES} random bytes, this one {len(key)}")
    return key


class TargetSettings(BaseModel):
    """One receiver of the outbox: where, with which secret, and how hard to try.

    Attempt n (1-based) that fails is retried after min(backoff_max_s, backoff_base_s * 2**(n-1)) seconds, less a
    random part of up to `backoff_jitter` of it; after `max_attempts` failed attempts the delivery is a dead letter.
    """

    # hide_input_in_errors: a refused secret or a URL with credentials is never quoted back in the error
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    url: HttpUrl = Field(repr=False, description="http(s) URL the deliveries are POSTed to")
    secret: SecretStr = Field(description="Standard Webhooks secret, `whsec_` + base64 of 24+ random bytes")
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=30, ge=1, le=1000)
    backoff_base_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=1800.0, gt=0)
    backoff_jitter: float = Field(default=0.5, ge=0, le=1)

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        secret_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> TargetSettings:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError(f"backoff_max_s {self.backoff_max_s} is below backoff_base_s {self.backoff_base_s}")
        return self

    @property
    def safe_url(self) -> str:
        """The URL without userinfo or secret query parameters: the only form that is logged or shown."""
        return sanitize_url(str(self.url))


class SeverityKeepDays(BaseModel):
    """Days evidence of events of each severity is kept after the event was last seen; 0: kept forever."""

    model_config = ConfigDict(extra="forbid")

    info: int = Field(default=7, ge=0, le=36_500)
    minor: int = Field(default=30, ge=0, le=36_500)
    major: int = Field(default=90, ge=0, le=36_500)
    critical: int = Field(default=365, ge=0, le=36_500)


class RetentionSettings(BaseModel):
    """Evidence retention (intake.retention): evidence of open cases is never removed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True  # false: the intake runs no retention thread (`gridwatch evidence prune` still works)
    every_s: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    keep_days: SeverityKeepDays = Field(default_factory=SeverityKeepDays)
    # days evidence of a closed or rejected case is kept after it was closed; 0: kept forever (by age)
    closed_case_days: int = Field(default=365, ge=0, le=36_500)
    # the disk holding the evidence folder fuller than this (percent): oldest removable evidence goes first,
    # until it is below low_water_pct
    high_water_pct: float = Field(default=90.0, gt=0, le=100)
    low_water_pct: float = Field(default=80.0, gt=0, le=100)
    dry_run: bool = False  # report what would go, remove nothing

    @model_validator(mode="after")
    def _water_marks(self) -> RetentionSettings:
        if self.low_water_pct >= self.high_water_pct:
            raise ValueError(f"low_water_pct {self.low_water_pct} must be below high_water_pct {self.high_water_pct}")
        return self


class IntakeSettings(BaseModel):
    """The grid-event intake: cases from incidents and reports, their deadlines, and delivery to the city."""

    model_config = ConfigDict(extra="forbid")

    cases: bool = True  # keep cases (the closed loop); false: events and incidents only
    # 核查 by camera: a camera case marked handled is checked by a fresh visit (gone: checking; still there: rework)
    check_by_camera: bool = True
    # PostgreSQL for the event and case stores (postgresql://user:password@host:5432/db), so several hosts share
    # them; none: SQLite files in data_dir. A secret: never logged or shown with its password.
    database_url: SecretStr | None = None
    merge_window_s: float = Field(default=86_400.0, ge=0)  # repeats of one camera, category and zone join
    link_window_s: float = Field(default=3_600.0, ge=0)  # human reports in the same grid and category are linked
    sweep_s: float = Field(default=60.0, gt=0, le=3600)  # how often yellow and red cards are looked for
    feed_interval_s: float = Field(default=0.5, gt=0, le=60)
    # events the patrol may hand off before the intake has stored them; beyond, visits hold their incidents back
    handoff_queue: int = Field(default=256, ge=1, le=100_000)
    # where cases are forwarded (Standard Webhooks), by a name of your choice
    targets: dict[str, TargetSettings] = Field(default_factory=dict)
    # days a delivered outbox row is kept (for `outbox replay` and audits); 0: for ever
    outbox_keep_days: int = Field(default=7, ge=0, le=3650)
    # the secret external producers sign POST /api/v1/intake/webhook with; none: that route is closed
    inbound_secret: SecretStr | None = None
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL")
        return value

    @field_validator("inbound_secret")
    @classmethod
    def _inbound_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret_key(value.get_secret_value())
        return value


class SensorSettings(BaseModel):
    """The sensor ingest (`sensors.yaml`): the MQTT broker it subscribes to and its bounded queue."""

    model_config = ConfigDict(extra="forbid")

    mqtt_host: str | None = None  # none: no MQTT, readings by HTTP only
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_qos: int = Field(default=0, ge=0, le=1)
    max_queue: int = Field(default=100_000, ge=1, le=10_000_000)  # readings waiting for the rules; more are refused
    tick_s: float = Field(default=1.0, gt=0, le=60)  # how often silence is judged (sensor_stale)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDWATCH_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("var")
    models_dir: Path = Path("models")
    model_mirror: str | None = None
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    patrol: PatrolSettings = Field(default_factory=PatrolSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    gating: GatingSettings = Field(default_factory=GatingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    sensors: SensorSettings = Field(default_factory=SensorSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides the file, which arrives as init kwargs
        return env_settings, init_settings

    @classmethod
    def from_file_data(cls, data: dict[str, Any]) -> Settings:
        return cls(**data)
