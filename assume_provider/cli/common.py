"""Options, error reporting and exit statuses shared by every subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

ERROR_PREFIX = "assume-provider: error: "


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def print_error(message: str) -> None:
    """One line on stderr, in the format every failure of this tool uses."""
    sys.stderr.write(f"{ERROR_PREFIX}{one_line(message)}\n")


def add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # --debug is accepted before and after the subcommand; the subcommand's copy must not
    # reset a value given before it, hence SUPPRESS there.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="show debug logs (secrets redacted) and a traceback on failure",
    )


def settings_parent_parser() -> argparse.ArgumentParser:
    """The settings every subcommand but ``template`` accepts, named as in the library (the
    disk cache's options are only offered by the subcommands that use it: add_cache_options).
    """
    parent = argparse.ArgumentParser(add_help=False)
    add_global_options(parent, top_level=False)
    group = parent.add_argument_group("settings (override environment and config file)")
    group.add_argument(
        "--role-arn",
        action="append",
        metavar="ARN",
        help="role to assume; repeat it, or give a comma list, for a chain (first hop first)",
    )
    group.add_argument(
        "--source",
        help=(
            "source credentials: auto, instance-metadata, container, environment, "
            "web-identity, profile:NAME"
        ),
    )
    group.add_argument("--external-id", help="external ID sent on the last hop")
    group.add_argument("--session-name", help="role session name")
    group.add_argument("--duration-seconds", help="requested duration of each hop")
    group.add_argument("--profile", help="AWS config profile to read settings from")
    params = parent.add_argument_group("session parameters (override environment and config file)")
    params.add_argument(
        "--source-identity", metavar="ID", help="SourceIdentity set on the first hop"
    )
    params.add_argument(
        "--tag",
        action="append",
        metavar="K=V",
        help="session tag sent on the last hop; repeat it for more tags",
    )
    params.add_argument(
        "--transitive-tag-key",
        action="append",
        metavar="KEY",
        help="key of a --tag that stays on sessions chained from the last hop; repeatable",
    )
    params.add_argument(
        "--policy-arn",
        action="append",
        metavar="ARN",
        help="managed session policy for the last hop; repeatable (at most 10)",
    )
    params.add_argument(
        "--policy",
        metavar="JSON",
        help="inline session policy for the last hop: JSON text or file://PATH",
    )
    params.add_argument(
        "--sts-fallback-region",
        action="append",
        metavar="REGION",
        help="region to retry a hop in when the STS region keeps failing; repeatable, in order",
    )
    return parent


# Repeatable options and the setting each one makes (the values joined with commas, as the
# cache-hit path reads them too).
REPEATED_OPTIONS = {
    "role_arn": "role_arn",
    "tag": "tags",
    "transitive_tag_key": "transitive_tag_keys",
    "policy_arn": "policy_arns",
    "sts_fallback_region": "sts_fallback_regions",
}
SINGLE_OPTIONS = (
    "source",
    "external_id",
    "session_name",
    "duration_seconds",
    "cache_dir",
    "source_identity",
    "policy",
)


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and ``--no-cache``, for the subcommands that use the disk cache."""
    group = parser.add_argument_group("disk cache")
    group.add_argument(
        "--cache-dir", help="disk cache folder (default ~/.aws/assume-provider/cache)"
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the disk cache (always call STS)",
    )


def settings_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The explicit settings given on the command line, as library keyword arguments."""
    explicit: dict[str, Any] = {}
    for option, name in REPEATED_OPTIONS.items():
        values = getattr(args, option, None)
        if values:
            explicit[name] = ",".join(values)
    for name in SINGLE_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            explicit[name] = value
    return explicit


def configure_logging(debug: bool) -> None:
    """With --debug, every DEBUG record (secrets redacted). Without it, this package's warnings,
    one line each in the error line's format: with no handler, Python's last-resort handler
    would print them bare."""
    import logging

    from ..redaction import install_redaction, redact_text

    if debug:
        logging.basicConfig(
            level=logging.DEBUG,
            stream=sys.stderr,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
        install_redaction()
        return

    class OneLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                text = one_line(redact_text(record.getMessage()))
                # sys.stderr as it is now, like Python's last-resort handler.
                sys.stderr.write(f"assume-provider: {record.levelname.lower()}: {text}\n")
            except Exception:  # noqa: BLE001 - logging's own contract for a failing handler
                self.handleError(record)

    package = logging.getLogger("assume_provider")
    if any(handler.get_name() == _WARNINGS_HANDLER for handler in package.handlers):
        return  # configured by an earlier run in this process
    handler = OneLine(logging.WARNING)
    handler.set_name(_WARNINGS_HANDLER)
    package.addHandler(handler)


_WARNINGS_HANDLER = "assume-provider-cli-warnings"


def unconfigure_logging() -> None:
    """Take the command's warning handler off the package's logger again: ``main()`` run in
    a process that goes on (a test, an application calling it) must not leave the library's
    warnings printed in the command's format."""
    import logging

    package = logging.getLogger("assume_provider")
    for handler in list(package.handlers):
        if handler.get_name() == _WARNINGS_HANDLER:
            package.removeHandler(handler)


def drop_warnings_of(logger_name: str) -> None:
    """Keep one logger's records off the one-line warnings (a subcommand reports them itself)."""
    import logging

    def other(record: logging.LogRecord) -> bool:
        return not record.name.startswith(logger_name)

    for handler in logging.getLogger("assume_provider").handlers:
        if handler.get_name() == _WARNINGS_HANDLER:
            handler.addFilter(other)


def run_handler(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, turning every failure into one line on stderr and an exit status."""
    debug = bool(getattr(args, "debug", False))
    configure_logging(debug)
    try:
        import os

        from ..config.variables import warn_unknown_variables

        warn_unknown_variables(os.environ, by_command_line=True)  # in this tool's format
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`assume-provider whoami | head`): nothing to say, and nothing
        # more to write; stdout is pointed at /dev/null so the flush at exit cannot fail again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: every error becomes one line
        status = exit_status_for(exc)
        if debug:
            import traceback

            from ..redaction import redact_text

            sys.stderr.write(redact_text("".join(traceback.format_exc())))
        print_error(describe(exc))
        return status


def exit_status_for(exc: BaseException) -> int:
    from ..errors import ConfigError

    return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE


def describe(exc: BaseException) -> str:
    """The error's message, never a secret (messages are redacted as a last line of defence)."""
    from ..redaction import redact_text

    text = str(exc) or type(exc).__name__
    return redact_text(text)
