"""A plain-http STS endpoint is refused unless its host is loopback: before any connection."""

from __future__ import annotations

import boto3
import pytest
from cli_support import run_tool, write_config
from testbed import TestBed

import assume_provider
from assume_provider import ConfigError
from assume_provider.credentials.sts import check_endpoint_transport

# Hosts that look loopback-ish to a careless check but are not.
REFUSED_URLS = [
    "http://sts.example.com",
    "HTTP://sts.example.com",  # the scheme is case-insensitive
    "http://10.0.0.1:8080",
    "http://127.0.0.1.nip.example",
    "http://localhost.example.com",
    "http://localhost:1234/",  # a name, not an address: see tests/test_loopback_rule.py
    "http://LOCALHOST",
    "http://127.0.0.1@evil.example",  # userinfo: the host is evil.example
    "http://evil.example#@127.0.0.1",
    "http://0x7f.0.0.1",  # not an address Python (or we) call loopback
    "ftp://127.0.0.1",
    "file:///etc/passwd",
]
ALLOWED_URLS = [
    "http://127.0.0.1:5000",
    "http://127.8.9.10",
    "http://[::1]:4566",
    "https://sts.us-east-1.amazonaws.com",
    "https://sts.example.com:8443/prefix",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_refused_endpoints(url: str) -> None:
    with pytest.raises(ConfigError, match="STS endpoint") as raised:
        check_endpoint_transport(url, "environment variable AWS_ENDPOINT_URL_STS")
    assert "AWS_ENDPOINT_URL_STS" in str(raised.value)


@pytest.mark.parametrize("url", ALLOWED_URLS)
def test_allowed_endpoints(url: str) -> None:
    check_endpoint_transport(url, "test")


ORIGINS = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "profile endpoint_url", "services sts"]


def _configure(origin: str, url: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Point STS at ``url`` through ``origin`` in os.environ (monkeypatch) and ``env``."""
    if origin.startswith("AWS_"):
        monkeypatch.setenv(origin, url)
        env[origin] = url
        if origin == "AWS_ENDPOINT_URL_STS":
            return
    # The bed's AWS_ENDPOINT_URL would win over the config file: remove it.
    if origin != "AWS_ENDPOINT_URL":
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        env.pop("AWS_ENDPOINT_URL", None)
    if origin == "profile endpoint_url":
        write_config(env, f"[default]\nendpoint_url = {url}\n")
    elif origin == "services sts":
        write_config(
            env, f"[default]\nservices = bad\n[services bad]\nsts =\n  endpoint_url = {url}\n"
        )


@pytest.mark.usefixtures("fresh_provider_state")
@pytest.mark.parametrize("origin", ORIGINS)
def test_install_refuses_plain_http_before_any_connection(
    aws_env: TestBed,
    subprocess_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    origin: str,
) -> None:
    _configure(origin, "http://sts.attacker.example", monkeypatch, subprocess_env)
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    with pytest.raises(ConfigError, match="refusing plain-http STS endpoint") as raised:
        boto3.Session().get_credentials()
    assert "sts.attacker.example" in str(raised.value)
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("command", ["credential-process", "env", "whoami"])
def test_cli_refuses_plain_http_with_one_line_and_no_connection(
    aws_env: TestBed,
    subprocess_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    origin: str,
    command: str,
) -> None:
    _configure(origin, "http://sts.attacker.example", monkeypatch, subprocess_env)
    result = run_tool([command, "--role-arn", aws_env.world.target_role_arn], subprocess_env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" or command == "whoami"
    (line,) = result.stderr.splitlines()
    assert line.startswith("assume-provider: error: refusing plain-http STS endpoint")
    assert "sts.attacker.example" in line
    assert aws_env.proxy.count() == 0 and aws_env.imds.request_count == 0


@pytest.mark.usefixtures("fresh_provider_state")
def test_loopback_http_is_allowed(aws_env: TestBed, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bed itself is plain http on 127.0.0.1, a loopback address.
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.proxy.url)
    assume_provider.install(role_arn=aws_env.world.target_role_arn)
    arn = boto3.client("sts").get_caller_identity()["Arn"]
    assert aws_env.world.account_a in arn
