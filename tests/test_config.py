"""F82: defaults < config file < environment; bad input names the file, the key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui_helpdesk.config import SECTIONS, Settings, load_settings
from tui_helpdesk.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "helpdesk.example.toml"


def test_defaults_use_a_sqlite_file_in_the_user_data_dir() -> None:
    settings = load_settings(environ={})
    assert settings.database.url.startswith("sqlite:///")
    assert settings.database.url.endswith("tui-helpdesk/helpdesk.sqlite3")
    assert settings.smtp.port == 2525
    assert settings.limits.mailboxes_per_organisation == 50


def test_example_file_documents_every_setting_with_its_default() -> None:
    text = EXAMPLE.read_text()
    defaults = Settings()
    from_example = load_settings(EXAMPLE, environ={})
    for section in SECTIONS:
        assert f"[{section}]" in text
        for key, value in vars(getattr(defaults, section)).items():
            assert f"{key} =" in text, f"{section}.{key} missing from the example config"
            if key != "url":
                assert getattr(getattr(from_example, section), key) == value


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "helpdesk.toml"
    path.write_text('[smtp]\nport = 2600\nhost = "127.0.0.2"\n[database]\nurl = "sqlite:///a.db"\n')
    settings = load_settings(path, environ={"TUI_HELPDESK_SMTP_PORT": "2700"})
    assert settings.smtp.port == 2700
    assert settings.smtp.host == "127.0.0.2"
    assert settings.database.url == "sqlite:///a.db"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nmailboxes_per_organisation = 3\n")
    settings = load_settings(environ={"TUI_HELPDESK_CONFIG": str(path)})
    assert settings.limits.mailboxes_per_organisation == 3


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[smtp]\nport = 'many'\n", "smtp.port: expected a whole number"),
        ("[smtp]\nprot = 25\n", "smtp.prot: unknown setting"),
        ("[smpt]\nport = 25\n", "unknown section [smpt]"),
        ("[smtp\nport = 25\n", "not valid TOML"),
        ("[smtp]\nport = 70000\n", "smtp.port must be 0-65535"),
        ("[smtp]\nidle_timeout_seconds = 0\n", "smtp.idle_timeout_seconds must be more than 0"),
        ("[smtp]\nmax_sessions_per_client = -1\n", "max_sessions_per_client must be 0 or more"),
        ("[smtp]\ntls_key = '/etc/k.pem'\n", "smtp.tls_certificate and smtp.tls_key go together"),
        ("[smtp]\nrequire_starttls = true\n", "smtp.require_starttls needs smtp.tls_certificate"),
        ("[outbound]\nsecurity = 'ssl'\n", "outbound.security must be none, starttls or tls"),
        ("[outbox]\nconcurrency = 0\n", "outbox.concurrency must be at least 1"),
        ("[outbox]\nlease_seconds = 0\n", "outbox.lease_seconds must be more than 0"),
        ("[dns]\nnameservers = ['ns1.example.net']\n", "dns.nameservers must be IP addresses"),
        ("[dns]\nnameservers = '127.0.0.1'\n", None),
        ("[dns]\nnameservers = [53]\n", "dns.nameservers: expected a list of strings"),
        ("[dns]\nport = 0\n", "dns.port must be 1-65535"),
        ("[dns]\ntimeout_seconds = 0\n", "dns.timeout_seconds must be more than 0"),
        ("[dns]\ndkim_selector = 'a b'\n", "dns.dkim_selector must be DNS labels"),
        ("[dns]\nspf_include = 'include:x.example'\n", "dns.spf_include must be a domain"),
        ("[inbound_auth]\ntrusted_relays = ['mx.example']\n", "must be IP addresses or networks"),
        ("[inbound_auth]\ntrusted_relays = ['192.0.2.0/24']\n", "authserv_id must name"),
    ],
)
def test_invalid_config_names_file_key_and_problem(
    tmp_path: Path, content: str, expected: str | None
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    if expected is None:  # a plain string is a one-item list, as in the environment
        assert load_settings(path, environ={}).dns.nameservers == ("127.0.0.1",)
        return
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(path) in info.value.message
    assert expected in info.value.message


def test_lists_come_from_toml_arrays_or_comma_separated_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[dns]\nnameservers = ["192.0.2.53", "2001:db8::53"]\n'
        '[inbound_auth]\ntrusted_relays = ["192.0.2.25"]\nauthserv_id = "mx.example.net"\n'
    )
    settings = load_settings(path, environ={})
    assert settings.dns.nameservers == ("192.0.2.53", "2001:db8::53")
    assert settings.inbound_auth.trusted_relays == ("192.0.2.25",)
    from_env = load_settings(
        path,
        environ={
            "TUI_HELPDESK_DNS_NAMESERVERS": "127.0.0.1, 127.0.0.2",
            "TUI_HELPDESK_DNS_PORT": "5353",
        },
    )
    assert from_env.dns.nameservers == ("127.0.0.1", "127.0.0.2")
    assert from_env.dns.port == 5353


def test_invalid_environment_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"environment: smtp\.port: expected a whole number"):
        load_settings(environ={"TUI_HELPDESK_SMTP_PORT": "x"})


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})
