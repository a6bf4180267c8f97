"""The TOML configuration: defaults documented, typos and bad types refused with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relayguard import config
from relayguard.errors import ConfigError

DOCS = Path(__file__).parents[1] / "docs" / "relayguard.example.toml"


def test_documented_example_is_the_rendered_defaults() -> None:
    assert DOCS.read_text(encoding="utf-8") == config.render_defaults()


def test_rendered_defaults_load_back_to_the_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(config.render_defaults(), encoding="utf-8")
    assert config.load(p) == config.Config()


def test_every_setting_is_documented() -> None:
    text = config.render_defaults()
    assert "# \n" not in text
    assert text.count("\n# ") >= 30


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[analyze]\nlocal_domain = ['x']\n", "unknown setting analyze.local_domain"),
        (
            "[detectors.auth_bruteforce]\nwindow = -5\n",
            "detectors.auth_bruteforce.window must be a whole number >= 0, not -5",
        ),
        ("[detectors.outbound_spike]\nfloor = 'ten'\n", "detectors.outbound_spike.floor must"),
        (
            "[analyze]\ntrusted_networks = '10.0.0.0/8'\n",
            "trusted_networks must be a list of strings",
        ),
        ("analyze = 3\n", "analyze must be a table"),
        ("[analyze]\ntrusted_networks = ['10.0.0.0/33']\n", "not a network: '10.0.0.0/33'"),
        ("[detectors.outbound_spike]\nwindow = 0\n", "window must be greater than 0, not 0"),
        ("[analyze\n", "is not valid TOML"),
        (
            "[analyze]\nlocal_domains = ['example.org', 'ex ample.org']\n",
            "analyze.local_domains: not a domain name: 'ex ample.org'",
        ),
        ("[analyze]\nlocal_domains = ['@example.org']\n", "not a domain name: '@example.org'"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_values_override_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        "[analyze]\nlocal_domains = ['example.org']\n"
        "[detectors.relay_probing]\nmin_denials = 2\n"
        "[detectors.outbound_spike]\nbaseline_mads = 5\n",
        encoding="utf-8",
    )
    c = config.load(p)
    assert c.analyze.local_domains == ["example.org"]
    assert c.detectors.relay_probing.min_denials == 2
    assert c.detectors.outbound_spike.baseline_mads == 5.0
    assert c.detectors.auth_bruteforce == config.AuthBruteforceSettings()


def test_cli_config_errors_exit_3(relayguard: Any, tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[analyze]\nbogus = 1\n", encoding="utf-8")
    run = relayguard("config", "check", str(p))
    assert run.code == 3
    assert run.err == "relayguard: error: unknown setting analyze.bogus\n"
    run = relayguard("analyze", "--config", str(tmp_path / "missing.toml"), "x.log")
    assert run.code == 3
    assert run.err.startswith("relayguard: error: cannot read config ")
    assert run.err.count("\n") == 1


def test_one_file_serves_analyze_and_policy(tmp_path: Path) -> None:
    from relayguard.policy.config import load_config

    path = tmp_path / "relayguard.toml"
    path.write_text(
        '[analyze]\nlocal_domains = ["example.org"]\n\n'
        '[policy]\nstore = "memory:"\n\n'
        "[[policy.rules]]\n"
        'key = "sasl_username"\ncount = "external_domains"\nwindows = ["50/hour"]\n'
        'action = "CONTAIN"\n'
    )
    assert config.load(path).analyze.local_domains == ["example.org"]
    policy = load_config(path)
    assert policy.rules.local_domains == frozenset({"example.org"})
    assert [r.contains for r in policy.rules.rules] == [True]


@pytest.mark.parametrize(
    ("given", "name"),
    [("Example.ORG.", "example.org"), ("xn--bcher-kva.example", "xn--bcher-kva.example"),
     ("bücher.example", "bücher.example"), ("_dmarc.example.org", "_dmarc.example.org")],
)  # fmt: skip
def test_domain_names_are_normalised(given: str, name: str) -> None:
    assert config.check_domain_name(given, "x") == name


@pytest.mark.parametrize("bad", ["", ".", "a..b", "-x.org", "x-.org", "a/b", "a b", "a@b"])
def test_not_domain_names(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^--local-domain: not a domain name: "):
        config.check_domain_name(bad, "--local-domain")


def test_cli_refuses_a_local_domain_that_is_no_name(relayguard: Any) -> None:
    for command in ("analyze", "pcap"):
        run = relayguard(command, "--local-domain", "ex ample.org", "/dev/null")
        assert run.code == 3
        message = "--local-domain: not a domain name: 'ex ample.org'"
        assert run.err.strip() == f"relayguard: error: {message}"


_RULE = '[[policy.rules]]\nkey = "sasl_username"\ncount = "messages"\naction = "DEFER"\n'


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (_RULE + 'windows = ["0/hour"]\n',
         "rule 1: bad window '0/hour': expected COUNT/PERIOD [burst N], e.g. '100/hour' or "
         "'1000/day'"),
        (_RULE.replace('"DEFER"', '"OK"') + 'windows = ["1/hour"]\n',
         "rule 1: bad action 'OK'; use DEFER, REJECT, HOLD, WARN or CONTAIN"),
        (_RULE.replace('"messages"', '"bogus"') + 'windows = ["1/hour"]\n',
         "rule 1: unknown counted thing 'bogus'; use messages, recipients, external_domains, "
         "bytes"),
        (_RULE + 'windows = ["1/hour"]\ncolour = "red"\n', "rule 1: unknown field 'colour'"),
        ('fail_mode = "maybe"\n', "policy.fail_mode must be 'open' or 'closed'"),
        ("store_timeout = -1\n", "policy.store_timeout must be a number above 0"),
        ("listen = 5\n", "policy.listen must be a string"),
        ('lissen = "127.0.0.1:1"\n', "policy: unknown setting 'lissen'"),
        ((_RULE + 'windows = ["1/hour"]\nname = "a"\n') * 2,
         "rule 2 ('a'): duplicate rule name 'a'"),
        (_RULE + 'windows = ["500MB/day"]\n',
         "rule 1: bad window '500MB/day': byte units (MB) only for count = 'bytes'"),
    ],
)  # fmt: skip
def test_config_check_validates_the_policy_table(
    relayguard: Any, tmp_path: Path, policy: str, message: str
) -> None:
    p = tmp_path / "relayguard.toml"
    head, _, rules = policy.partition("[[policy.rules]]")
    text = "[policy]\n" + head + ("[[policy.rules]]" + rules if rules else "")
    p.write_text(text, encoding="utf-8")
    run = relayguard("config", "check", str(p))
    assert (run.code, run.out, run.err) == (3, "", f"relayguard: error: {message}\n")


def test_config_check_accepts_a_good_policy_table(relayguard: Any, tmp_path: Path) -> None:
    p = tmp_path / "relayguard.toml"
    p.write_text('[policy]\nstore = "memory:"\n' + _RULE + 'windows = "1/hour"\n')
    run = relayguard("config", "check", str(p))
    assert (run.code, run.out) == (0, f"{p}: ok\n")
