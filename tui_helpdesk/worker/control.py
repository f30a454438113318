"""How the headless worker answers its service manager: ready, alive, reloading, stopping.

SIGHUP (`systemctl reload tui-helpdesk-worker`) re-reads the config file and the environment:

- applied at once: `worker.log_level`, and the STARTTLS certificate and key (`smtp.tls_*`:
  the files are loaded again even when their names did not change, as after a renewal; new
  connections get the new certificate); mailboxes and aliases need no signal at all (the alias
  cache refreshes itself every half second from the database);
- everything else (listen address, message size, database URL, mail settings the store process
  holds) needs a restart; the worker logs which changed settings wait for one;
- a file that does not load any more is refused with its error and the running settings stay.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.errors import ConfigError
from tui_helpdesk.worker import systemd

log = logging.getLogger(__name__)

LIVE_SETTINGS = {"worker.log_level", "smtp.tls_certificate", "smtp.tls_key"}


def setting_values(settings: Settings) -> dict[str, object]:
    """{"smtp.port": 2525, …} for every setting."""
    return {
        f"{section.name}.{key}": value
        for section in dataclasses.fields(settings)
        if section.name != "source"
        for key, value in vars(getattr(settings, section.name)).items()
    }


class WorkerControl:
    """systemd notifications and SIGHUP reloads for one `tui-helpdesk worker` process."""

    def __init__(
        self, settings: Settings, on_reload: Callable[[Settings], None] = lambda fresh: None
    ) -> None:
        self.source = settings.source
        self.on_reload = on_reload  # applies what the worker takes live (the TLS certificate)
        self.loaded = load_settings(self.source)  # as read, before command-line overrides
        self.watchdog = systemd.watchdog_seconds()

    def heartbeat_seconds(self, usual: float) -> float:
        """Beat at least twice per watchdog interval, as sd_watchdog_enabled(3) advises."""
        return min(usual, self.watchdog / 2) if self.watchdog else usual

    def ready(self, status: str) -> None:
        systemd.notify(f"READY=1\nSTATUS={status}")

    def alive(self) -> None:
        if self.watchdog:
            systemd.notify("WATCHDOG=1")

    def stopping(self) -> None:
        systemd.notify("STOPPING=1\nSTATUS=draining: committing what is in flight")

    def reload(self) -> None:
        systemd.notify(systemd.reloading_state())
        try:
            fresh = load_settings(self.source)
        except ConfigError as error:
            log.error("reload refused, the running settings stay: %s", error.message)
        else:
            self._apply(fresh)
        systemd.notify("READY=1\nSTATUS=configuration reloaded")

    def _apply(self, fresh: Settings) -> None:
        before, after = setting_values(self.loaded), setting_values(fresh)
        changed = sorted(name for name in after if after[name] != before[name])
        level = fresh.worker.log_level.upper()
        logging.getLogger().setLevel(level)
        log.warning("configuration reloaded from %s: log level now %s",
                    self.source or "the environment", level)  # fmt: skip
        self.on_reload(fresh)
        waiting = [name for name in changed if name not in LIVE_SETTINGS]
        if waiting:
            log.warning(
                "changed, applied after a restart (systemctl restart tui-helpdesk-worker): %s",
                ", ".join(waiting),
            )
        self.loaded = fresh
