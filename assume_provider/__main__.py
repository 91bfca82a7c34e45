"""``python -m assume_provider``: the same as the ``assume-provider`` command."""

from .cli import console_main

if __name__ == "__main__":
    console_main()
