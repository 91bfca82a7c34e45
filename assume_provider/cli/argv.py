"""Settings given before the subcommand: moved after it, so they mean exactly the same.

``assume-provider --role-arn ARN whoami`` is read as ``assume-provider whoami --role-arn ARN``
(the AWS CLI accepts options on either side too). Moving the words, instead of declaring the
settings on the top-level parser as well, keeps one meaning for each: a repeated option
collects its values in command-line order, and a setting a subcommand does not take (say
``--cache-dir`` before ``whoami``) is refused exactly as it is after it.

No argparse here: ``credential-process`` runs on every ``aws`` call, and its cache-hit path
sees the moved words too. ``test_cli_order`` checks this table against the parsers.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

COMMANDS = ("credential-process", "env", "exec", "whoami", "template", "serve")
# Options that may come before the subcommand: --debug, and every setting (each takes one value).
FLAGS = ("--debug",)
SETTINGS_WITH_A_VALUE = (
    "--role-arn",
    "--source",
    "--external-id",
    "--session-name",
    "--duration-seconds",
    "--profile",
    "--cache-dir",
    "--source-identity",
    "--tag",
    "--transitive-tag-key",
    "--policy-arn",
    "--policy",
    "--sts-fallback-region",
)

# Each subcommand's own options (``env --shell``, ``serve --port``, ...): moved too, so that
# ``--shell bash env`` works and ``--port 0 whoami`` is refused by name, never with the value
# read as the command ("invalid choice: 'bash'"). `template`'s own go after its KIND.
COMMAND_FLAGS = ("--unset", "--json", "--no-cache")
COMMAND_OPTIONS_WITH_A_VALUE = (
    "--shell",
    "--host",
    "--port",
    "--token-file",
    "--allow-user",
    "--allow-group",
)


def _option(word: str) -> str | None:
    """The option ``word`` names (argparse's unique-prefix abbreviations included), or None."""
    name = word.partition("=")[0]
    known = FLAGS + SETTINGS_WITH_A_VALUE + COMMAND_FLAGS + COMMAND_OPTIONS_WITH_A_VALUE
    if name in known:
        return name
    matches = [option for option in known if option.startswith(name)] if name[:2] == "--" else []
    return matches[0] if len(matches) == 1 else None


def subcommand_first(argv: Sequence[str]) -> list[str]:
    """``argv`` with the settings before the subcommand moved just after it (order kept).

    The first word after the settings is taken as the subcommand even when it is not one
    (``--role-arn ARN whoam``), so that argparse's "invalid choice" names that word and not
    the ARN. Anything else it does not recognise before the subcommand (``--help``,
    ``--version``, a misspelt option) leaves ``argv`` as it is, for argparse to answer.
    """
    words = list(argv)
    position = _end_of_settings(words)
    if position is None or position == 0 or position == len(words):
        return words
    # `template` takes its options after its KIND (`template target-role --external-id X`):
    # between the two, the template parser would read a setting's value as the KIND.
    command = words[position : position + 1]
    rest = words[position + 1 :]
    if command == ["template"] and rest and not rest[0].startswith("-"):
        command, rest = [*command, rest[0]], rest[1:]
    return [*command, *words[:position], *rest]


def settings_only(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is nothing but settings: a command line that forgot its command."""
    return bool(argv) and _end_of_settings(argv) == len(argv)


def _end_of_settings(words: Sequence[str]) -> int | None:
    """Where the settings at the start of ``words`` end (at the first word not an option),
    or None when an option there is not one of them."""
    position = 0
    while position < len(words):
        word = words[position]
        if word == "--" or not word.startswith("-"):
            return position  # `--` ends the settings; argparse names it if it is misplaced
        option = _option(word)
        if option is None:
            return None
        with_a_value = SETTINGS_WITH_A_VALUE + COMMAND_OPTIONS_WITH_A_VALUE
        takes_value = option in with_a_value and "=" not in word
        position += 2 if takes_value else 1
    return min(position, len(words))
