"""``assume-provider serve`` as a real process, with the real AWS CLI, boto3 and botocore's
own container provider as clients: processes that know only the server's two variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cli_support import AWS, run_aws, run_tool, write_config
from server_support import client_env, empty_config, serving, token_file_mode
from test_core_app import APP
from testbed import TestBed
from testbed.proxy import Fault


def _start(bed: TestBed, env: dict[str, str], tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return serving(env, ["--role-arn", bed.world.target_role_arn, *extra], tmp_path / "t" / "token")


def _client(env: dict[str, str], server, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**client_env(env, server), **empty_config(tmp_path)}


def test_aws_cli_and_boto3_with_only_the_two_variables_share_one_assume_role(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    with _start(bed, subprocess_env, tmp_path) as server:
        env = _client(subprocess_env, server, tmp_path)
        identity = run_aws(["sts", "get-caller-identity"], env)
        assert identity.returncode == 0, identity.stderr
        assert json.loads(identity.stdout)["Arn"].startswith(
            f"arn:aws:sts::{bed.world.account_a}:assumed-role/TargetRole/"
        )
        world = bed.world
        app = subprocess.run(
            [
                sys.executable,
                "-c",
                APP,
                "none",
                world.table_name,
                world.secret_name,
                world.secret_attribute,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert app.returncode == 0, app.stderr
        assert json.loads(app.stdout)["secret"] == world.secret_plaintext
        assert bed.proxy.count(action="AssumeRole") == 1
        assert bed.imds.credential_request_count <= 1  # only the server's own source
        _, _, served = server.get("/")
        token = server.token
        status, err = server.stop()
    assert status == 0
    assert "refreshed" in err
    for secret in (served["SecretAccessKey"], served["Token"], token):
        assert secret not in err


def test_twenty_processes_started_together_cause_one_assume_role(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    bed.proxy.inject(Fault.delay(1.0), action="AssumeRole")  # all 20 arrive during the fetch
    with _start(bed, subprocess_env, tmp_path) as server:
        env = _client(subprocess_env, server, tmp_path)
        script = "import boto3; print(boto3.client('sts').get_caller_identity()['Account'])"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(20)
        ]
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            assert out.strip() == bed.world.account_a
        aws = run_aws(["sts", "get-caller-identity"], env)
        assert aws.returncode == 0, aws.stderr
    assert bed.proxy.count(action="AssumeRole") == 1


def test_answers_token_host_routes_and_health(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    write_config(
        subprocess_env,
        f"[profile other]\nassume_provider_role_arn = {bed.world.hop_role_arn}\n"
        "[profile plain]\nregion = us-east-1\n",
    )
    with _start(bed, subprocess_env, tmp_path) as server:
        status, headers, body = server.get("/")
        assert status == 200
        assert headers["Cache-Control"] == "no-store"
        assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"}
        assert body["Expiration"].endswith("Z")
        assert body["AccountId"] == bed.world.account_a
        secrets = (body["SecretAccessKey"], body["Token"], server.token, body["AccessKeyId"])

        answers = [
            server.get("/", authorize=False),
            server.get("/", token="wrong-" + server.token),
            server.get("/", token=server.token + "\t"),
        ]
        assert [a[0] for a in answers] == [401, 401, 401]
        port = server.url.rsplit(":", 1)[1].rstrip("/")
        for host in (f"evil.example:{port}", f"localhost.evil.example:{port}", "127.0.0.1"):
            answers.append(server.get("/", host=host))
            assert answers[-1][0] == 403
        for path in ("/nope", "/profile/missing", "/profile/plain"):
            answers.append(server.get(path))
            assert answers[-1][0] == 404, path
            assert set(answers[-1][2]) == {"code", "message"}

        status, _, other = server.get("/profile/other")
        assert status == 200
        assert other["AccountId"] == bed.world.account_b  # the profile's chain, not --role-arn
        assert other["AccessKeyId"] != body["AccessKeyId"]
        (hop,) = [
            c
            for c in bed.proxy.calls(action="AssumeRole")
            if c.params["RoleArn"] == bed.world.hop_role_arn
        ]
        assert hop is not None

        status, _, health = server.get("/healthz", authorize=False)
        assert status == 200
        assert health["status"] == "ok"
        assert set(health["routes"]) == {"/"}  # profile names only with the token
        assert health["profile_routes"] == {"ok": 1, "degraded": 0, "failing": 0, "idle": 0}
        _, _, detailed = server.get("/healthz")
        assert set(detailed["routes"]) == {"/", "/profile/other"}
        assert 3000 < health["routes"]["/"]["expires_in"] <= 3600
        assert health["routes"]["/"]["last_error"] is None
        code, err = server.stop()
    assert code == 0
    text = json.dumps([a[2] for a in answers]) + json.dumps(health) + err
    for secret in secrets[:3]:
        assert secret not in text
    assert secrets[3] not in json.dumps(health) and secrets[3] not in json.dumps(answers)
    assert bed.proxy.count(action="AssumeRole") == 2


def test_sts_failing_with_nothing_cached_is_a_503_naming_role_and_code(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    bed.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole", times=None)
    with _start(bed, subprocess_env, tmp_path) as server:
        status, _headers, body = server.get("/")
        assert status == 503
        assert set(body) == {"code", "message"}
        assert body["code"] == "AccessDenied"
        assert bed.world.target_role_arn in body["message"] and "hop 1" in body["message"]
        _, _, health = server.get("/healthz", authorize=False)
        assert health["status"] == "failing"
        assert health["routes"]["/"] == {"expires_in": None, "last_error": "AccessDenied"}
        aws = run_aws(["sts", "get-caller-identity"], _client(subprocess_env, server, tmp_path))
        assert aws.returncode != 0
        code, err = server.stop()
    assert code == 0
    assert "failed: AccessDenied" in err


def test_bind_checks_refuse_anything_but_loopback(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    for host in ("0.0.0.0", "192.0.2.10", "localhost", "::"):
        done = run_tool(
            [
                "serve",
                "--host",
                host,
                "--port",
                "0",
                "--token-file",
                str(tmp_path / "tok"),
                "--role-arn",
                aws_env.world.target_role_arn,
            ],
            subprocess_env,
        )
        assert done.returncode == 2, (host, done.stderr)
        assert done.stdout == ""
        assert done.stderr.startswith("assume-provider: error: --host")


def test_token_file_is_created_private_and_unsafe_ones_are_refused(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    bed = aws_env
    token_path = tmp_path / "new" / "folder" / "token"
    with serving(subprocess_env, ["--role-arn", bed.world.target_role_arn], token_path) as server:
        assert server.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == str(token_path)
        assert server.url.startswith("http://127.0.0.1:")
        assert server.stop()[0] == 0
    started_with = bed.proxy.count(action="AssumeRole")  # 0 or 1: its warm-up may be cut short
    token = token_path.read_text()
    assert len(token) >= 43 and "\n" not in token and "\r" not in token
    assert token_file_mode(token_path) == 0o600
    assert token_file_mode(token_path.parent) == 0o700

    readable = tmp_path / "readable"
    readable.write_text("x" * 43)
    readable.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(token_path)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with_newline = tmp_path / "newline"
    with_newline.write_text("y" * 43 + "\n")
    with_newline.chmod(0o600)
    refused = [readable, link, folder, with_newline]
    if os.geteuid() == 0:  # a file of another user can only be made by root
        foreign = tmp_path / "foreign"
        foreign.write_text("z" * 43)
        foreign.chmod(0o600)
        os.chown(foreign, 65534, 65534)
        refused.append(foreign)
    else:
        refused.append(Path("/etc/passwd"))  # root's, and readable by all
    for path in refused:
        done = run_tool(
            [
                "serve",
                "--port",
                "0",
                "--token-file",
                str(path),
                "--role-arn",
                bed.world.target_role_arn,
            ],
            subprocess_env,
        )
        assert done.returncode == 2, (path, done.stderr)
        assert done.stdout == ""
        assert done.stderr.startswith(f"assume-provider: error: --token-file {path}")
    assert bed.proxy.count(action="AssumeRole") == started_with  # refused before any request


def test_sigint_exits_zero_too(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    import signal

    with _start(aws_env, subprocess_env, tmp_path) as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=60) == 0  # failure-only bound


def test_aws_cli_is_the_client(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The real `aws` executable, twice: the second call costs no AssumeRole."""
    with _start(aws_env, subprocess_env, tmp_path) as server:
        env = _client(subprocess_env, server, tmp_path)
        for _ in range(2):
            done = subprocess.run(
                [*AWS, "dynamodb", "list-tables", "--output", "json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert aws_env.world.table_name in json.loads(done.stdout)["TableNames"]
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_no_secret_or_token_in_stderr_at_any_log_level(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """Default and --debug (botocore's wire logs included): a failed AssumeRole, a refresh,
    answered and refused requests, a client's call; stderr names no secret, token or the
    server's token."""
    bed = aws_env
    instance = bed.imds.credentials
    for level, extra in (("default", []), ("debug", ["--debug"])):
        bed.reset()
        bed.proxy.inject(Fault.error("AccessDenied", 403), action="AssumeRole")
        token_path = tmp_path / level / "token"
        args = ["--role-arn", bed.world.target_role_arn, *extra]
        with serving(subprocess_env, args, token_path) as server:
            deadline = time.monotonic() + 60
            status, _, served = server.get("/")  # 503 until the engine's retry succeeds
            while status != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
                status, _, served = server.get("/")
            assert status == 200, served
            token = server.token
            server.get("/", token=token[:-1])  # almost the token: 401
            server.get("/", token=token + "x")
            server.get("/healthz", authorize=False)
            aws = run_aws(["sts", "get-caller-identity"], _client(subprocess_env, server, tmp_path))
            assert aws.returncode == 0, aws.stderr
            code, err = server.stop()
        assert code == 0
        assert "failed: AccessDenied" in err and "refreshed" in err, (level, err)
        if extra:
            assert " DEBUG " in err  # the debug logs were really on
        secrets = {
            "served secret": served["SecretAccessKey"],
            "served session token": served["Token"],
            "server token": token,
            "instance secret": instance.secret_access_key,
            "instance token": instance.token,
        }
        for what, value in secrets.items():
            assert value not in err, f"{what} in stderr at {level} level"
        for what in ("server token", "served session token", "instance token"):
            assert secrets[what][:24] not in err, f"a prefix of the {what} at {level} level"
