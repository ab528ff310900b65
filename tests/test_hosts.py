"""hosts.HostPolicy, the one decision on Host and Origin headers (the API's pipeline and the
MCP port both ask it), and its setting --allowed-hosts."""

from __future__ import annotations

import dataclasses

import pytest

from fullstory_emulator.cli import settings_from
from fullstory_emulator.hosts import HostPolicy, parse_allowed_hosts, split_authority
from fullstory_emulator.settings import Settings, SettingsError


@pytest.mark.parametrize("bind", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_a_loopback_bind_answers_loopback_names_only(bind):
    policy = HostPolicy.build(bind)
    for host in ("localhost:8080", "127.0.0.1", "127.8.9.10:1", "[::1]:9090", "LocalHost", None):
        assert policy.allows_host(host), host
    for host in ("evil.example:8080", "fullstory:8080", "localhost.evil.example", "[::1", ""):
        assert not policy.allows_host(host), host


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.5"])
def test_another_bind_answers_any_host_compose_names_and_mapped_ports(bind):
    policy = HostPolicy.build(bind)
    for host in ("fullstory:8080", "localhost:49153", "host.docker.internal:18080", "evil.example"):
        assert policy.allows_host(host), host


def test_allowed_hosts_apply_whatever_the_bind():
    policy = HostPolicy.build("0.0.0.0", ("fullstory", ".ci.example"))
    assert policy.allows_host("fullstory:8080") and policy.allows_host("localhost:49153")
    assert policy.allows_host("ci.example") and policy.allows_host("x.ci.example:1")
    assert not policy.allows_host("evil.example:8080")
    assert not policy.allows_host("xci.example")  # a domain is matched at a dot
    bound = HostPolicy.build("192.168.1.5", ("fullstory",))
    assert bound.allows_host("192.168.1.5:8080")  # the address it listens on
    assert HostPolicy.build("127.0.0.1", ("*",)).allows_host("evil.example")


def test_the_public_urls_host_is_answered_on_any_port():
    policy = HostPolicy.build("127.0.0.1", None, "http://user:pw@Emulator.Test:8080/base")
    assert policy.allows_host("emulator.test:9999") and policy.allows_host("EMULATOR.TEST")
    assert not policy.allows_host("evil.example")


def test_origins():
    policy = HostPolicy.build("127.0.0.1", ("dev.test",), "https://proxy.test")
    own = ("http", "127.0.0.1:8080")
    assert policy.allows_origin("http://127.0.0.1:8080", *own)
    assert policy.allows_origin("http://127.0.0.1", "http", "127.0.0.1:80")  # default ports
    assert policy.allows_origin("https://proxy.test", *own)  # --public-url's
    assert policy.allows_origin("https://proxy.test:443", *own)
    assert policy.allows_origin("http://dev.test:3000", *own)  # a name allowed by name
    for foreign in (
        "null",
        "http://127.0.0.1:3000",
        "http://localhost:8080",
        "https://127.0.0.1:8080",
        "http://proxy.test",  # another scheme than --public-url's
        "file://",
        "http://127.0.0.1:8080/path",
        "http://[::1",  # no URL at all
        "",
    ):
        assert not policy.allows_origin(foreign, *own), foreign
    assert not policy.allows_origin("http://x", "http", None)  # no Host: nothing to be the same


def test_a_public_url_that_is_no_url_names_no_host():
    policy = HostPolicy.build("127.0.0.1", None, "http://[::1")
    assert policy.allows_host("localhost") and not policy.allows_host("evil.example")


def test_refusals_name_the_header_and_the_flag():
    policy = HostPolicy.build("127.0.0.1", ("fullstory",))
    message = policy.host_refusal("evil.example:8080")
    assert "'evil.example:8080'" in message and "--allowed-hosts" in message
    assert "fullstory" in message
    assert "--allowed-hosts" in policy.origin_refusal("null") and "'null'" in policy.origin_refusal(
        "null"
    )


@pytest.mark.parametrize(
    ("authority", "split"),
    [
        ("Example.COM:80", ("example.com", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
        ("localhost.", ("localhost", None)),
        ("::1", None),
        ("a:b", None),
        ("a:99999", None),
        ("[::1]x", None),
        (":80", None),
    ],
)
def test_split_authority(authority, split):
    assert split_authority(authority) == split


def test_the_setting_parses_lists_and_refuses_ports():
    assert parse_allowed_hosts("") is None and parse_allowed_hosts(" , ") is None
    assert parse_allowed_hosts("Fullstory, .Example.com,[::1],fullstory") == (
        "fullstory",
        ".example.com",
        "::1",
    )
    assert parse_allowed_hosts("*") == ("*",)
    for bad in ("fullstory:8080", "http://fullstory", "a b", "a/b"):
        with pytest.raises(ValueError, match="host name"):
            parse_allowed_hosts(bad)


def test_the_flag_the_variable_and_worker_processes():
    _, flagged = settings_from(["--allowed-hosts", "fullstory,emulator.test"], environ={})
    assert flagged.allowed_hosts == ("fullstory", "emulator.test")
    env = {"FULLSTORY_EMULATOR_ALLOWED_HOSTS": "fullstory"}
    assert Settings.load({}, env).allowed_hosts == ("fullstory",)
    # workers get the settings as variables: the list comes back the same, and unset stays unset
    assert Settings.load({}, flagged.to_environ()).allowed_hosts == flagged.allowed_hosts
    assert Settings.load({}, Settings().to_environ()).allowed_hosts is None
    with pytest.raises(SettingsError, match="FULLSTORY_EMULATOR_ALLOWED_HOSTS"):
        Settings.load({}, {"FULLSTORY_EMULATOR_ALLOWED_HOSTS": "fullstory:8080"})
    with pytest.raises(SystemExit):
        settings_from(["--allowed-hosts", "x:1"], environ={})


def test_a_host_judged_before_is_judged_the_same_however_many_names_came_between():
    """allows_host keeps what it judged per Host header (bounded): the same answers, a scan of
    many names included, and a copy of the policy with other names judges afresh."""
    policy = HostPolicy.build("127.0.0.1", ("api.example",))
    names = [f"n{i}.rebind.test" for i in range(600)]
    for _ in range(2):
        assert policy.allows_host("localhost:8080") and policy.allows_host("api.example")
        assert not policy.allows_host("evil.example") and not policy.allows_host("[::1")
        assert not any(policy.allows_host(name) for name in names)
    other = dataclasses.replace(policy, names=frozenset({"evil.example"}))
    assert other.allows_host("evil.example") and not policy.allows_host("evil.example")
