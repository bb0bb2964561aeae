"""Settings: each is documented, read from KB_* variables, and reaches the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_site import create_app
from kb_site.config import SETTINGS, ConfigError, Setting, coerce, defaults, search_config

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    """The README's configuration table names every KB_* variable."""
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in README]
    assert not missing


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    """KB_* variables override defaults, numbers parsed as numbers."""
    monkeypatch.setenv("KB_LEXICAL_WEIGHT", "0.4")
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "inst"))
    app = create_app()
    assert app.instance_path == str(tmp_path / "inst")
    assert search_config(app.config).lexical_weight == 0.4


def test_cli_help_lists_every_command(runner):
    """kb --help names each command, and each command's help is in the README."""
    result = runner.invoke(args=["--help"])
    for command in ("serve", "index", "search", "check", "eval", "bench", "db", "worker", "tickets", "staff", "link",
                    "purge", "learn"):
        assert command in result.output
        assert f"kb {command}" in README


def test_every_default_already_has_its_type():
    """Coercing the defaults changes nothing: each default is a value of its setting's type."""
    config = defaults()
    coerce(config)
    assert config == defaults()
    assert all(type(config[s.name]) is (s.type or type(s.default)) for s in SETTINGS)


@pytest.mark.parametrize(("setting", "given", "expected"), [
    (Setting("N", 10, ""), 7, 7), (Setting("N", 10, ""), "7", 7), (Setting("N", 10, ""), 7.0, 7),
    (Setting("F", 1.5, ""), 2, 2.0), (Setting("F", 1.5, ""), "0.25", 0.25),
    (Setting("F", 60, "", type=float), 90, 90.0),
    (Setting("S", "", ""), "abc", "abc"), (Setting("S", "", ""), 12345, "12345"), (Setting("S", "", ""), True, "true"),
    (Setting("S", "", ""), None, ""), (Setting("S", "", ""), Path("/srv/kb"), "/srv/kb"),
    *[(Setting("B", True, ""), given, True) for given in (True, 1, "true", "TRUE", "Yes", "on", " 1 ")],
    *[(Setting("B", True, ""), given, False) for given in (False, 0, "false", "False", "NO", "off", "0")],
])
def test_values_are_coerced_to_the_setting_type(setting, given, expected):
    """Numbers, text and flags are converted once, whichever source (environment, file, test) gave them."""
    value = setting.coerce(given)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("setting", "given", "message"), [
    (Setting("PAGE_SIZE", 10, ""), "abc", "KB_PAGE_SIZE must be a whole number, not 'abc'"),
    (Setting("PAGE_SIZE", 10, ""), 2.5, "KB_PAGE_SIZE must be a whole number, not 2.5"),
    (Setting("PAGE_SIZE", 10, ""), True, "KB_PAGE_SIZE must be a whole number, not True"),
    (Setting("WORKER_POLL", 1.0, ""), "soon", "KB_WORKER_POLL must be a number, not 'soon'"),
    (Setting("WORKER_POLL", 1.0, ""), float("nan"), "KB_WORKER_POLL must be a number, not nan"),
    (Setting("WORKER_IN_SERVE", True, ""), "maybe", "KB_WORKER_IN_SERVE must be true or false"),
    (Setting("WORKER_IN_SERVE", True, ""), 2, "KB_WORKER_IN_SERVE must be true or false"),
    (Setting("SECRET_KEY", "", ""), b"\xec", "KB_SECRET_KEY must be text, not a bytes"),
])
def test_a_bad_value_names_the_setting_and_what_it_needs(setting, given, message):
    """The error says which variable is wrong and what it should be (a secret is never repeated back)."""
    with pytest.raises(ConfigError) as caught:
        setting.coerce(given)
    assert str(caught.value).startswith(message)


def test_the_app_refuses_to_start_with_a_malformed_setting(monkeypatch, tmp_path):
    """create_app coerces every KB_* value once: a bad one stops it before anything starts."""
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "inst"))
    monkeypatch.setenv("KB_PAGE_SIZE", "abc")
    with pytest.raises(ConfigError, match="KB_PAGE_SIZE must be a whole number, not 'abc'"):
        create_app()


def test_environment_values_arrive_typed(monkeypatch, tmp_path):
    """Flags in any spelling, floats written as whole numbers, numeric text: each arrives as its type."""
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "inst"))
    for name, value in {"KB_WORKER_IN_SERVE": "No", "KB_STAFF_IDLE_MINUTES": "90", "KB_SMTP_PASSWORD": "12345",
                        "KB_SMTP_PORT": "2525"}.items():
        monkeypatch.setenv(name, value)
    config = create_app().config
    assert config["WORKER_IN_SERVE"] is False
    assert config["STAFF_IDLE_MINUTES"] == 90.0 and isinstance(config["STAFF_IDLE_MINUTES"], float)
    assert config["SMTP_PASSWORD"] == "12345" and config["SMTP_PORT"] == 2525


def test_the_worker_gets_typed_settings(monkeypatch, tmp_path):
    """The delivery worker's policy and backends are built once from the coerced config."""
    from kb_site.tickets.worker import DeliveryPolicy, WorkerSettings

    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "inst"))
    monkeypatch.setenv("KB_DELIVERY_BACKOFF", "5")
    monkeypatch.setenv("KB_WEBHOOK_TIMEOUT", "3")
    settings = WorkerSettings.from_config(create_app({"SMTP_PORT": "2525"}).config)
    assert settings.policy == DeliveryPolicy(max_attempts=8, backoff=5.0, backoff_max=3600.0, lease=120.0)
    assert settings.backends.smtp.port == 2525 and settings.backends.webhook.timeout == 3.0
    assert (settings.poll, settings.retention_days, settings.ticket_backend) == (1.0, 365, "local")


BUNDLED = Path(__file__).parent.parent / "articles"
SUPPORT = ("SUPPORT_EMAIL", "SUPPORT_PHONE", "SUPPORT_HOURS", "SUPPORT_CHAT_URL")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SUPPORT_CHAT_URL", "chat.shop.example", "KB_SUPPORT_CHAT_URL must be an http or https address with a host"),
    ("SUPPORT_CHAT_URL", "javascript:alert(1)", "KB_SUPPORT_CHAT_URL must be an http or https address"),
    ("SUPPORT_CHAT_URL", "https://", "KB_SUPPORT_CHAT_URL must be an http or https address with a host"),
    ("SUPPORT_CHAT_URL", "ftp://chat.shop.example", "KB_SUPPORT_CHAT_URL must be an http or https address"),
    ("SUPPORT_CHAT_URL", "https://[::1", "KB_SUPPORT_CHAT_URL must be an http or https address"),
    ("SUPPORT_CHAT_URL", "https://chat shop.example", "KB_SUPPORT_CHAT_URL must be an http or https address"),
    ("SUPPORT_PHONE", "0800 CALL NOW", "KB_SUPPORT_PHONE may hold only digits, spaces and + - ( ) ."),
    ("SUPPORT_PHONE", "+44 20 7946 0000 ext. 12", "KB_SUPPORT_PHONE may hold only digits"),
    ("SUPPORT_PHONE", "12345", "KB_SUPPORT_PHONE must have 6 to 15 digits (an international number has at most "
                               "15), not 5 in '12345'"),
    ("SUPPORT_PHONE", "+44 20 7946 0000 0000 00", "KB_SUPPORT_PHONE must have 6 to 15 digits"),
    ("SUPPORT_PHONE", "020 7946 0000 +44", "KB_SUPPORT_PHONE may have a + only at its start"),
    ("SUPPORT_EMAIL", "support", "KB_SUPPORT_EMAIL must be an email address like help@shop.example, not 'support'"),
    ("SUPPORT_EMAIL", "help@shop", "KB_SUPPORT_EMAIL must be an email address"),
    ("SUPPORT_EMAIL", "help@@shop.example", "KB_SUPPORT_EMAIL must be an email address"),
])
def test_a_malformed_way_to_reach_support_stops_the_start(monkeypatch, tmp_path, name, value, message):
    """The chat address must be http(s) with a host, the phone 6 to 15 digits written plainly, the email an address:
    anything else is refused at start with the setting's name and what it should look like."""
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "inst"))
    monkeypatch.setenv(f"KB_{name}", value)
    with pytest.raises(ConfigError) as caught:
        create_app({"ARTICLES_DIR": str(tmp_path)})
    assert str(caught.value).startswith(message)


def test_well_formed_ways_to_reach_support_are_kept_as_written(tmp_path):
    """Valid values start the site, trimmed of surrounding spaces but otherwise as written."""
    config = create_app({"INSTANCE_DIR": str(tmp_path / "inst"), "ARTICLES_DIR": str(tmp_path),
                         "SUPPORT_EMAIL": " help@shop.example ", "SUPPORT_PHONE": "+44 (0)20 7946-0000",
                         "SUPPORT_HOURS": "Every day, 8am to 8pm", "SUPPORT_CHAT_URL": "http://chat.shop.example/x"}
                        ).config
    assert [config[name] for name in SUPPORT] == ["help@shop.example", "+44 (0)20 7946-0000", "Every day, 8am to 8pm",
                                                  "http://chat.shop.example/x"]


@pytest.mark.parametrize(("written", "tel"), [
    ("+44 20 7946 0000", "+442079460000"),
    ("+44 (0)20 7946 0000", "+442079460000"),  # the trunk 0 is not dialled from abroad
    ("+1 (555) 010-0199", "+15550100199"),
    ("020 7946 0000", "02079460000"),  # written without +: dialled as written, no + made up
    ("0800.123.4567", "08001234567"),
])
def test_the_phone_is_dialled_as_its_digits(written, tel):
    """The tel: form is the digits, after a + only when the number is written with one."""
    from kb_site.config import dialled

    assert dialled(written) == tel


@pytest.mark.parametrize("folder", ["packaged path", "default, started in the checkout"])
def test_the_bundled_sample_shows_sample_ways_to_reach_support(monkeypatch, tmp_path, folder):
    """The packaged articles under the sample shop's name get the sample's (fictional) ways to reach support, also
    as `kb serve` finds them out of the box (the default ./articles, started in the checkout)."""
    from kb_site.config import SAMPLE_SUPPORT

    given = {"ARTICLES_DIR": str(BUNDLED)} if folder == "packaged path" else {}
    monkeypatch.chdir(BUNDLED.parent)
    config = create_app({"INSTANCE_DIR": str(tmp_path / "inst"), **given}).config
    assert {name: config[name] for name in SUPPORT} == SAMPLE_SUPPORT
    assert all(SAMPLE_SUPPORT.values())


@pytest.mark.parametrize("case", ["copy of the articles", "another shop's name", "one way set"])
def test_sample_ways_to_reach_support_are_never_given_to_a_real_shop(tmp_path, case):
    """Another articles folder (even a copy of the sample's), the packaged folder under another shop's name, or a
    way set by the shop: no sample value is filled in."""
    import shutil

    config = {"INSTANCE_DIR": str(tmp_path / "inst"), "ARTICLES_DIR": str(BUNDLED)}
    if case == "copy of the articles":
        shutil.copytree(BUNDLED, tmp_path / "articles")
        config["ARTICLES_DIR"] = str(tmp_path / "articles")
    elif case == "another shop's name":
        config["SHOP_NAME"] = "Acme Climbing"
    else:
        config["SUPPORT_EMAIL"] = "care@acme.example"
    shown = create_app(config).config
    expected = {"SUPPORT_EMAIL": "care@acme.example" if case == "one way set" else ""}
    assert {name: shown[name] for name in SUPPORT} == {**dict.fromkeys(SUPPORT, ""), **expected}
