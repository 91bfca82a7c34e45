"""One settings resolver: the library, the CLI and its cache-hit path choose the profile and
read the config files by botocore's own rules, and the disk cache knows the files by content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from cli_support import modules_the_tool_imports, run_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testbed import TestBed

from assume_provider.config.profiles import ConfigFiles, choose_profile

# Same length as TargetRole's ARN, in the same account: a rewrite can keep the file's size.
# moto's AssumeRole maps credentials to any role ARN's account, existing or not.
OTHER_ROLE = "arn:aws:iam::111111111111:role/OtherRoleX"


def _assumed_role_name(credential_process_stdout: str, bed: TestBed) -> str:
    """Which role the printed credentials belong to, asked of STS (moto) directly."""
    document = json.loads(credential_process_stdout)
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=bed.moto_url,
        region_name=bed.world.region,
        aws_access_key_id=document["AccessKeyId"],
        aws_secret_access_key=document["SecretAccessKey"],
        aws_session_token=document["SessionToken"],
    )
    arn = sts.get_caller_identity()["Arn"]  # arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
    return str(arn.split("/")[1])


def _library_role_name(env: dict[str, str]) -> str:
    """The role a boto3 program gets after install(), in a process of its own."""
    program = (
        "import assume_provider, boto3\n"
        "assume_provider.install()\n"
        "print(boto3.client('sts').get_caller_identity()['Arn'].split('/')[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_with_both_profile_variables_cli_and_library_use_botocores_choice(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    # botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE: settings, source and STS all
    # come from profile "default-profile-var".
    Path(subprocess_env["AWS_CONFIG_FILE"]).write_text(
        f"[profile profile-var]\nassume_provider_role_arn = {aws_env.world.target_role_arn}\n"
        f"[profile default-profile-var]\nassume_provider_role_arn = {OTHER_ROLE}\n"
    )
    subprocess_env["AWS_PROFILE"] = "profile-var"
    subprocess_env["AWS_DEFAULT_PROFILE"] = "default-profile-var"

    done = run_tool(["credential-process"], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert _assumed_role_name(done.stdout, aws_env) == "OtherRoleX"
    assert _library_role_name(subprocess_env) == "OtherRoleX"
    hit = run_tool(["credential-process"], subprocess_env)  # the cache-hit path agrees
    assert hit.stdout == done.stdout
    assert aws_env.proxy.count(action="AssumeRole") == 2  # the CLI's one, the library's one


def test_a_profile_only_in_the_credentials_file_exists(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    Path(subprocess_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[creds-only]\nassume_provider_role_arn = {aws_env.world.target_role_arn}\n"
    )
    done = run_tool(["credential-process", "--profile", "creds-only"], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert _assumed_role_name(done.stdout, aws_env) == "TargetRole"
    subprocess_env["AWS_PROFILE"] = "creds-only"
    assert _library_role_name(subprocess_env) == "TargetRole"


def test_a_profile_section_with_extra_spaces_is_that_profile(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    Path(subprocess_env["AWS_CONFIG_FILE"]).write_text(
        f"[profile   spaced]\nassume_provider_role_arn = {OTHER_ROLE}\n"
    )
    done = run_tool(["credential-process", "--profile", "spaced"], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert _assumed_role_name(done.stdout, aws_env) == "OtherRoleX"


def test_a_named_profile_that_is_nowhere_is_exit_2_naming_what_named_it(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    subprocess_env["AWS_DEFAULT_PROFILE"] = "missing"
    subprocess_env["ASSUME_PROVIDER_ROLE_ARN"] = aws_env.world.target_role_arn
    done = run_tool(["credential-process"], subprocess_env)
    assert done.returncode == 2
    assert "profile 'missing'" in done.stderr
    assert "AWS_DEFAULT_PROFILE" in done.stderr
    assert aws_env.proxy.count() == 0 and not aws_env.imds.path_counts


def test_a_mixed_case_cache_dir_key_is_one_folder_for_the_hit_and_the_full_path(
    aws_env: TestBed, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "mixed-case-cache"
    Path(subprocess_env["AWS_CONFIG_FILE"]).write_text(
        f"[default]\nAssume_Provider_Cache_Dir = {folder}\n"
    )
    args = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    first = run_tool(args, subprocess_env)
    # The cache-hit path must find the same folder: it answers, before argparse is imported.
    second, imported = modules_the_tool_imports(args, subprocess_env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert second.stdout == first.stdout
    assert "argparse" not in imported
    assert len(list(folder.glob("*.entry"))) == 1
    default_folder = Path(subprocess_env["HOME"]) / ".aws" / "assume-provider" / "cache"
    assert not list(default_folder.glob("*.entry"))
    assert aws_env.proxy.count(action="AssumeRole") == 1


def test_a_same_size_same_mtime_rewrite_of_the_config_file_starts_a_new_entry(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    config = Path(subprocess_env["AWS_CONFIG_FILE"])
    target = aws_env.world.target_role_arn
    assert len(target) == len(OTHER_ROLE)
    config.write_text(f"[default]\nassume_provider_role_arn = {target}\n")
    before = config.stat()
    first = run_tool(["credential-process"], subprocess_env)
    assert first.returncode == 0, first.stderr
    assert _assumed_role_name(first.stdout, aws_env) == "TargetRole"

    # In place (same inode), same size, and the old modification time put back (cp -p).
    with open(config, "r+", encoding="utf-8") as handle:
        handle.write(f"[default]\nassume_provider_role_arn = {OTHER_ROLE}\n")
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = config.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )

    second = run_tool(["credential-process"], subprocess_env)
    assert second.returncode == 0, second.stderr
    assert _assumed_role_name(second.stdout, aws_env) == "OtherRoleX"
    assert aws_env.proxy.count(action="AssumeRole") == 2


def test_an_edit_of_the_credentials_file_starts_a_new_entry(
    aws_env: TestBed, subprocess_env: dict[str, str]
) -> None:
    credentials = Path(subprocess_env["AWS_SHARED_CREDENTIALS_FILE"])
    args = ["credential-process", "--role-arn", aws_env.world.target_role_arn]
    assert run_tool(args, subprocess_env).returncode == 0
    assert run_tool(args, subprocess_env).returncode == 0
    assert aws_env.proxy.count(action="AssumeRole") == 1
    credentials.write_text("[unrelated]\nregion = us-east-1\n")
    assert run_tool(args, subprocess_env).returncode == 0
    assert aws_env.proxy.count(action="AssumeRole") == 2


# -- agreement with botocore, for any file -------------------------------------------------

section_names = st.sampled_from(
    [
        "default",
        "profile default",
        "profile a",
        "profile  a",
        "profile\ta",
        'profile "a"',
        'profile "b c"',
        "profile b",
        "profileb",
        "profile a b",
        'profile "unclosed',
        "sso-session s",
        "services s",
        "preview",
        "a",
        "b",
    ]
)
keys = st.sampled_from(["region", "Region", "assume_provider_role_arn", "ASSUME_PROVIDER_SOURCE"])
values = st.sampled_from(["x", "y z", "", "arn:aws:iam::111111111111:role/R", "\n  s = 1"])
ini_files = st.lists(
    st.tuples(section_names, st.dictionaries(keys, values, max_size=3)), max_size=6
)


def _render(sections: list[tuple[str, dict[str, str]]]) -> str:
    lines = []
    for name, items in sections:
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value}" for key, value in items.items())
    return "\n".join(lines) + "\n"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=ini_files, credentials=ini_files)
def test_the_profiles_are_botocores_for_any_pair_of_files(
    tmp_path: Path,
    config: list[tuple[str, dict[str, str]]],
    credentials: list[tuple[str, dict[str, str]]],
) -> None:
    config_path, credentials_path = tmp_path / "config", tmp_path / "credentials"
    config_path.write_text(_render(config))
    credentials_path.write_text(_render(credentials))
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(config_path))
    session.set_config_variable("credentials_file", str(credentials_path))
    try:
        expected = session.full_config["profiles"]
    except botocore.exceptions.ConfigParseError:
        expected = None
    files = ConfigFiles(str(config_path), str(credentials_path))
    try:
        ours = files.profiles()
    except Exception as exc:  # ConfigError: both must refuse the same files
        assert expected is None, exc
        return
    assert ours == expected


def test_the_profile_choice_is_botocores() -> None:
    environ = {"AWS_PROFILE": "p", "AWS_DEFAULT_PROFILE": "d"}
    for explicit, env, expected in [
        (None, {}, "default"),
        (None, {"AWS_PROFILE": "p"}, "p"),
        (None, environ, "d"),
        ("x", environ, "x"),
    ]:
        session = botocore.session.Session(profile=explicit)
        session.set_config_variable("config_file", "/nonexistent")
        # botocore reads the environment through its own config chain; give it this one.
        saved = {name: os.environ.pop(name, None) for name in environ}
        os.environ.update(env)
        try:
            botocore_choice = session.get_config_variable("profile") or "default"
        finally:
            for name in environ:
                os.environ.pop(name, None)
                if saved[name] is not None:
                    os.environ[name] = saved[name]  # type: ignore[assignment]
        ours = choose_profile(env, explicit)
        assert ours.name == botocore_choice == expected
        assert ours.must_exist == (explicit is not None or bool(env))


@pytest.mark.parametrize("key", ["assume_provider_cache_dir", "ASSUME_PROVIDER_CACHE_DIR"])
def test_unparsed_files_are_parsed_only_when_they_may_hold_the_key(
    tmp_path: Path, key: str
) -> None:
    config = tmp_path / "config"
    config.write_text(f"[default]\n{key} = /x\n")
    files = ConfigFiles(str(config), str(tmp_path / "absent"))
    assert files.may_define("assume_provider_cache_dir")
    assert not files.may_define("assume_provider_role_arn")
    assert files.profile("default") == {"assume_provider_cache_dir": "/x"}
