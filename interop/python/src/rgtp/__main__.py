"""``python -m rgtp expose FILE ...`` / ``python -m rgtp pull TICKET OUTPUT ...``."""

from __future__ import annotations

import sys

from .cli import cmd_expose, cmd_pull


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "expose":
        return cmd_expose(argv[1:])
    if argv and argv[0] == "pull":
        return cmd_pull(argv[1:])
    print("usage: python -m rgtp {expose FILE [...] | pull TICKET OUTPUT [...]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
