#!/usr/bin/env python3
"""Puts a rule table between README's rules-table markers.

    python3 scripts/readme-rules.py README.md TABLE.md
"""

import sys

BEGIN = "<!-- rules-table:begin -->\n"
END = "<!-- rules-table:end -->"


def main():
    readme, table = sys.argv[1], sys.argv[2]
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    with open(table, encoding="utf-8") as f:
        rows = f.read()
    start = text.index(BEGIN) + len(BEGIN)
    stop = text.index(END, start)
    with open(readme, "w", encoding="utf-8") as f:
        f.write(text[:start] + rows + text[stop:])


if __name__ == "__main__":
    main()
