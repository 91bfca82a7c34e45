"""The sandbox: the demo's local stand-in for AWS, left running for your own commands.

Starts moto (STS, IAM, DynamoDB, KMS, seeded with the demo's two accounts) and an IMDSv2 fake
that hands out account B's instance-role credentials, all on 127.0.0.1, and prints the shell
lines that point a shell at them: endpoints, region, AWS config files of its own, the role
chain, and PATH with this environment's `aws`, `python` and `assume-provider` first. Paste
them into another shell (or source the file it names) and run your own script, `aws`,
`assume-provider env/exec/whoami/serve` against the stand-in; nothing leaves the machine.
Ctrl-C (SIGINT), SIGTERM or a hang-up (SIGHUP) stops everything and exits 0.

Run it with `./scripts/demo --sandbox`. The lines are on stdout, the last one `# ready ...`;
messages go to stderr.
"""

from __future__ import annotations

import shlex
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testbed import TestBed

# Whatever the other shell has that would take precedence over the stand-in, or send the
# requests elsewhere: credentials, profiles, other credential endpoints, IMDS switched off.
SHADOWING_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL_STS",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "ASSUME_PROVIDER_SOURCE",
    "ASSUME_PROVIDER_EXPORTED_KEY_ID",
    "ASSUME_PROVIDER_ENABLE",
)


def config_text(bed: TestBed, tool: Path) -> str:
    """The sandbox's AWS config file: the region, and a profile using `credential_process`
    with the role in `assume_provider_role_arn` (the profile form the README gives)."""
    world = bed.world
    return (
        f"[default]\nregion = {world.region}\n\n"
        "[profile account-a]\n"
        f"region = {world.region}\n"
        f"credential_process = {tool} credential-process --profile account-a\n"
        f"assume_provider_role_arn = {world.target_role_arn}\n"
        f"assume_provider_external_id = {world.external_id}\n"
    )


def shell_lines(bed: TestBed, folder: Path) -> list[str]:
    """The lines for a POSIX shell (sh, bash, zsh), values quoted."""
    world = bed.world
    bin_folder = Path(sys.executable).parent  # this venv's: aws, python, assume-provider
    (folder / "config").write_text(config_text(bed, bin_folder / "assume-provider"))
    variables = bed.env(folder)  # endpoints, IMDS, region, the two (new) files, NO_PROXY
    variables["ASSUME_PROVIDER_ROLE_ARN"] = world.target_role_arn
    variables["ASSUME_PROVIDER_EXTERNAL_ID"] = world.external_id
    # The stand-in's credentials are cached in this folder, which goes when the sandbox
    # stops, not among the user's own in ~/.aws/assume-provider/cache.
    variables["ASSUME_PROVIDER_CACHE_DIR"] = str(folder / "cache")
    lines = [
        "# assume-provider sandbox: moto (STS, IAM, DynamoDB, KMS) and an IMDSv2 fake on 127.0.0.1",
        "unset " + " ".join(SHADOWING_VARIABLES),
        f'export PATH={shlex.quote(str(bin_folder))}:"$PATH"',
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    return lines


def main() -> int:
    # Blocked before any thread starts (threads inherit the mask), then taken by sigwait():
    # a Ctrl-C at any moment, even during start-up, ends in the same clean stop; so does
    # closing its terminal (SIGHUP), which would otherwise leave its folder behind.
    stopping_signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping_signals)
    print("sandbox: starting moto and the IMDSv2 fake on 127.0.0.1 ...", file=sys.stderr)
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="assume-provider-sandbox-") as tmp:
        folder = Path(tmp)
        lines = shell_lines(bed, folder)
        env_file = folder / "sandbox.env"
        env_file.write_text("\n".join(lines) + "\n")
        world = bed.world
        print("\n".join(lines))
        print(f"# the instance (IMDS) is account B {world.account_b}, {world.instance_role_arn}")
        print(
            f"# the role is account A {world.account_a}: table {world.table_name!r} "
            f"(item {world.secret_name!r}), its KMS key"
        )
        print(f"# these lines are also in {env_file}: . {shlex.quote(str(env_file))}")
        print("# then: aws sts get-caller-identity; assume-provider whoami; python your_script.py")
        print("# ready; Ctrl-C here stops the sandbox", flush=True)
        received = signal.sigwait(stopping_signals)
        print(f"sandbox: {signal.Signals(received).name}: stopping ...", file=sys.stderr)
    print("sandbox: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
