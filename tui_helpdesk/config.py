"""Typed settings: defaults < TOML file < environment. The one place that reads them."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from tui_helpdesk.errors import ConfigError

ENV_PREFIX = "TUI_HELPDESK_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
COLOR_SYSTEMS = ("auto", "standard", "256", "truecolor")
ANIMATIONS = ("none", "basic", "full")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("tui-helpdesk", appauthor=False))
    return f"sqlite:///{data_dir / 'helpdesk.sqlite3'}"


def default_keymap_path() -> str:
    config_dir = Path(platformdirs.user_config_dir("tui-helpdesk", appauthor=False))
    return str(config_dir / "keymap.toml")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = field(default_factory=default_database_url)
    busy_timeout_ms: int = 10_000
    sqlite_synchronous: str = "FULL"


@dataclass(frozen=True)
class SmtpSettings:
    """The ingest server (F70)."""

    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "helpdesk.localhost"
    max_message_size: int = 50 * 1024 * 1024
    # Facing the internet on port 25 (issue 11): timeouts, caps and STARTTLS; see smtp/limits.py.
    idle_timeout_seconds: float = 300.0
    data_timeout_seconds: float = 300.0
    max_sessions: int = 500
    max_sessions_per_client: int = 50
    idle_timeout_when_full_seconds: float = 10.0
    tls_certificate: str = ""
    tls_key: str = ""
    require_starttls: bool = False
    batch_max_messages: int = 64
    processing_budget_seconds: float = 5.0
    drain_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class MailSettings:
    platform_domain: str = "in.helpdesk.localhost"
    subject_token_prefix: str = "HD"
    autoresponders_enabled: bool = True
    autoreply_period_hours: int = 24


@dataclass(frozen=True)
class OutboundSettings:
    """The platform's default relay for outgoing mail (F17)."""

    relay_host: str = "127.0.0.1"
    relay_port: int = 25
    security: str = "none"
    username: str = ""
    password: str = ""
    ca_file: str = ""  # CA certificates trusted for outgoing TLS; "" = the system's


@dataclass(frozen=True)
class OutboxSettings:
    """The outbox sender in every worker (F73): pace, concurrency, retries, leases."""

    poll_interval_seconds: float = 0.5
    batch_size: int = 100
    concurrency: int = 8
    connections_per_destination: int = 1
    idle_connection_seconds: float = 5.0
    smtp_timeout_seconds: float = 60.0
    webhook_timeout_seconds: float = 10.0
    lease_seconds: float = 300.0
    max_attempts: int = 12
    max_age_hours: float = 24.0
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0


@dataclass(frozen=True)
class DnsSettings:
    """The resolver every DNS check asks (F2 domain check, F75 inbound SPF/DKIM/DMARC)."""

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout_seconds: float = 5.0
    dkim_selector: str = "helpdesk"
    spf_include: str = ""


@dataclass(frozen=True)
class InboundAuthSettings:
    """F75: whose Authentication-Results header is believed for SPF (behind an MTA), and the
    checker every worker runs after the commit (a job per inbound message)."""

    trusted_relays: tuple[str, ...] = ()
    authserv_id: str = ""
    concurrency: int = 4  # messages checked at once by each worker; 0: this worker checks none
    max_attempts: int = 4  # checks while the DNS fails (temperror); the last result stays
    backoff_base_seconds: float = 60.0  # the wait before the 2nd check; doubled for each next one
    poll_interval_seconds: float = 1.0  # how often an idle checker looks for new messages


@dataclass(frozen=True)
class VerificationSettings:
    """F16: the code mailed to a new mailbox's address, and how guessing it is slowed."""

    code_valid_minutes: int = 30
    max_wrong_codes: int = 5
    lock_minutes: int = 15
    resend_interval_seconds: int = 60


@dataclass(frozen=True)
class LimitSettings:
    mailboxes_per_organisation: int = 50
    mailboxes_per_queue: int = 20


@dataclass(frozen=True)
class TuiSettings:
    refresh_interval_seconds: float = 0.25
    # Rows read per page: a screen or two. Larger pages cost every first frame, search and
    # page read (200 rows with their joins: ~30 ms; 50: ~3 ms on 100k conversations).
    page_size: int = 50
    # Over SSH (textual#4816, #1022, #3992): see cli/terminal.py.
    ssh_escape_delay_ms: int = 50
    ssh_color_system: str = "auto"
    ssh_animations: str = "none"
    # A TOML file of binding id = "keys" overriding the TUI's keys (tui/keymap.py); optional.
    keymap_path: str = field(default_factory=default_keymap_path)


@dataclass(frozen=True)
class WorkerSettings:
    """The headless worker's own knobs; log_level also changes live on SIGHUP."""

    log_level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    inbound_auth: InboundAuthSettings = field(default_factory=InboundAuthSettings)
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    source: str | None = None

    def replace(self, **sections: Any) -> Settings:
        """Return a copy with some fields of some sections changed: replace(smtp={"port": 0})."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


SECTIONS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "source"}


def _coerce_list(value: Any, where: str) -> tuple[str, ...]:
    """A TOML list of strings, or (from the environment) one string split at commas/spaces."""
    if isinstance(value, str):
        return tuple(item for item in re.split(r"[,\s]+", value) if item)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{where}: expected a list of strings, got {value!r}", field=where)


def _coerce(value: Any, target: type, where: str) -> Any:
    if target is tuple:
        return _coerce_list(value, where)
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{where}: expected true or false, got {value!r}", field=where)
    if target is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}", field=where)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: expected a whole number, got {value!r}", field=where
            ) from None
    if target is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}", field=where) from None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}", field=where)
    return value


def _section_types(section_cls: type) -> dict[str, type]:
    names = {"str": str, "int": int, "float": float, "bool": bool, "tuple[str, ...]": tuple}
    return {f.name: names[str(f.type)] for f in dataclasses.fields(section_cls)}


def _apply(values: dict[str, dict[str, Any]], source: str) -> dict[str, dict[str, Any]]:
    checked: dict[str, dict[str, Any]] = {}
    for section, entries in values.items():
        if section not in SECTIONS:
            known = ", ".join(sorted(SECTIONS))
            raise ConfigError(
                f"{source}: unknown section [{section}] (known: {known})", field=section
            )
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: [{section}] must be a table", field=section)
        types = _section_types(SECTIONS[section].default_factory)  # type: ignore[misc]
        for key, value in entries.items():
            where = f"{source}: {section}.{key}"
            if key not in types:
                raise ConfigError(
                    f"{where}: unknown setting (known: {', '.join(types)})", field=key
                )
            checked.setdefault(section, {})[key] = _coerce(value, types[key], where)
    return checked


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found", field="config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", field="config") from None
    return _apply(data, str(path))


def _read_env(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for section, section_field in SECTIONS.items():
        for key in _section_types(section_field.default_factory):  # type: ignore[misc]
            name = f"{ENV_PREFIX}{section}_{key}".upper()
            if name in environ:
                found.setdefault(section, {})[key] = environ[name]
    return _apply(found, "environment") if found else {}


def _validate(settings: Settings) -> None:
    where = settings.source or "settings"
    _validate_smtp(settings.smtp, where)
    if settings.limits.mailboxes_per_organisation < 1:
        raise ConfigError(
            f"{where}: limits.mailboxes_per_organisation must be at least 1", field="limits"
        )
    if settings.outbound.security not in {"none", "starttls", "tls"}:
        raise ConfigError(
            f"{where}: outbound.security must be none, starttls or tls, "
            f"got {settings.outbound.security!r}",
            field="security",
        )
    _validate_outbox(settings.outbox, where)
    _validate_verification(settings.verification, where)
    if settings.database.sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ConfigError(
            f"{where}: database.sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA"
        )
    _one_of(where, "tui.ssh_color_system", settings.tui.ssh_color_system, COLOR_SYSTEMS)
    _one_of(where, "tui.ssh_animations", settings.tui.ssh_animations, ANIMATIONS)
    _one_of(where, "worker.log_level", settings.worker.log_level.upper(), LOG_LEVELS)
    if settings.tui.ssh_escape_delay_ms < 1:
        raise ConfigError(f"{where}: tui.ssh_escape_delay_ms must be at least 1", field="tui")
    _validate_dns(settings.dns, where)
    _validate_inbound_auth(settings.inbound_auth, where)


def _validate_smtp(smtp: SmtpSettings, where: str) -> None:
    if not 0 <= smtp.port <= 65535:
        raise ConfigError(f"{where}: smtp.port must be 0-65535, got {smtp.port}", field="port")
    for name in ("processing_budget_seconds", "idle_timeout_seconds", "data_timeout_seconds"):
        if not getattr(smtp, name) > 0:
            raise ConfigError(
                f"{where}: smtp.{name} must be more than 0, got {getattr(smtp, name)}", field=name
            )
    for name in ("drain_timeout_seconds", "idle_timeout_when_full_seconds", "max_sessions",
                 "max_sessions_per_client"):  # fmt: skip
        if getattr(smtp, name) < 0:
            raise ConfigError(
                f"{where}: smtp.{name} must be 0 or more, got {getattr(smtp, name)}", field=name
            )
    if bool(smtp.tls_certificate) != bool(smtp.tls_key):
        raise ConfigError(
            f"{where}: smtp.tls_certificate and smtp.tls_key go together: set both or neither",
            field="tls_key" if smtp.tls_certificate else "tls_certificate",
        )
    if smtp.require_starttls and not smtp.tls_certificate:
        raise ConfigError(
            f"{where}: smtp.require_starttls needs smtp.tls_certificate and smtp.tls_key",
            field="require_starttls",
        )


def _one_of(where: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"{where}: {name} must be one of {', '.join(allowed)}, got {value!r}",
            field=name.partition(".")[2],
        )


DNS_LABELS = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*$")


def _validate_dns(dns: DnsSettings, where: str) -> None:
    for server in dns.nameservers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ConfigError(
                f"{where}: dns.nameservers must be IP addresses, got {server!r}",
                field="nameservers",
            ) from None
    if not 1 <= dns.port <= 65535:
        raise ConfigError(f"{where}: dns.port must be 1-65535, got {dns.port}", field="port")
    if dns.timeout_seconds <= 0:
        raise ConfigError(
            f"{where}: dns.timeout_seconds must be more than 0, got {dns.timeout_seconds}",
            field="timeout_seconds",
        )
    if not DNS_LABELS.match(dns.dkim_selector):
        raise ConfigError(
            f"{where}: dns.dkim_selector must be DNS labels (letters, digits, hyphens, dots), "
            f"got {dns.dkim_selector!r}",
            field="dkim_selector",
        )
    if dns.spf_include and not DNS_LABELS.match(dns.spf_include):
        raise ConfigError(
            f"{where}: dns.spf_include must be a domain name like _spf.relay.example, "
            f"got {dns.spf_include!r}",
            field="spf_include",
        )


def _validate_inbound_auth(auth: InboundAuthSettings, where: str) -> None:
    for relay in auth.trusted_relays:
        try:
            ipaddress.ip_network(relay, strict=False)
        except ValueError:
            raise ConfigError(
                f"{where}: inbound_auth.trusted_relays must be IP addresses or networks "
                f"(192.0.2.25, 2001:db8::/64), got {relay!r}",
                field="trusted_relays",
            ) from None
    for key, least in (("concurrency", 0), ("max_attempts", 1)):
        if getattr(auth, key) < least:
            raise ConfigError(f"{where}: inbound_auth.{key} must be at least {least}", field=key)
    for key in ("backoff_base_seconds", "poll_interval_seconds"):
        if not getattr(auth, key) > 0:
            raise ConfigError(f"{where}: inbound_auth.{key} must be more than 0", field=key)
    if auth.trusted_relays and not auth.authserv_id.strip():
        raise ConfigError(
            f"{where}: inbound_auth.authserv_id must name the authserv-id your trusted relays "
            "write in Authentication-Results when trusted_relays is set",
            field="authserv_id",
        )


def _validate_outbox(outbox: OutboxSettings, where: str) -> None:
    at_least_one = ("batch_size", "concurrency", "connections_per_destination", "max_attempts")
    for key in at_least_one:
        if getattr(outbox, key) < 1:
            raise ConfigError(f"{where}: outbox.{key} must be at least 1", field=key)
    positive = ("poll_interval_seconds", "smtp_timeout_seconds", "webhook_timeout_seconds",
                "lease_seconds", "max_age_hours", "backoff_base_seconds")  # fmt: skip
    for key in positive:
        if not getattr(outbox, key) > 0:
            raise ConfigError(f"{where}: outbox.{key} must be more than 0", field=key)
    if outbox.backoff_max_seconds < outbox.backoff_base_seconds:
        raise ConfigError(
            f"{where}: outbox.backoff_max_seconds must be at least backoff_base_seconds",
            field="backoff_max_seconds",
        )


def _validate_verification(verification: VerificationSettings, where: str) -> None:
    for key in ("code_valid_minutes", "max_wrong_codes", "lock_minutes"):
        if getattr(verification, key) < 1:
            raise ConfigError(f"{where}: verification.{key} must be at least 1", field=key)
    if verification.resend_interval_seconds < 0:
        raise ConfigError(
            f"{where}: verification.resend_interval_seconds must be 0 or more",
            field="resend_interval_seconds",
        )


def load_settings(
    config_path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Resolve settings: defaults, then the file (argument or $TUI_HELPDESK_CONFIG), then env."""
    environ = dict(os.environ if environ is None else environ)
    path = config_path or environ.get(CONFIG_ENV) or None
    layers: list[dict[str, dict[str, Any]]] = []
    if path:
        layers.append(_read_file(Path(path)))
    layers.append(_read_env(environ))
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    settings = Settings(source=str(path) if path else None).replace(**merged)
    _validate(settings)
    return settings
