#!/usr/bin/env python3
"""What share of an audit log a CloudWatch Logs JSON filter pattern forwards.

    python3 scripts/filter-share.py PATTERN EVENTS.ndjson [EVENTS.ndjson ...]

Reads one audit event per line (the `events.ndjson` of a corpus generated
with the bench generator, or an export of your own log group) and prints
how many events and bytes the pattern passes. It evaluates the subset of
CloudWatch's JSON filter syntax the templates use: `$.a.b` and `$.a[0]`
selectors, `=` and `!=` against quoted strings (with `*` wildcards) or
numbers, `EXISTS` and `NOT EXISTS`, `&&`, `||` and parentheses. As in CloudWatch, a comparison with
a field the event lacks is false, `!=` included. `""` passes everything.
Stdlib only.
"""

import fnmatch
import json
import re
import sys

TOKEN = re.compile(r'\s*(\(|\)|&&|\|\||!=|=|NOT|EXISTS|"(?:[^"\\]|\\.)*"|\$[\w.\[\]]+|-?\d+(?:\.\d+)?)')


def tokenize(text):
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    pos, out = 0, []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            raise SystemExit(f"cannot read the pattern at: {text[pos:pos + 30]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def select(event, path):
    cur = event
    for part in re.findall(r"\.(\w+)|\[(\d+)\]", path[1:]):
        name, index = part
        if name:
            if not isinstance(cur, dict) or name not in cur:
                return None, False
            cur = cur[name]
        else:
            i = int(index)
            if not isinstance(cur, list) or i >= len(cur):
                return None, False
            cur = cur[i]
    return cur, True


def compare(value, op, literal):
    if literal.startswith('"'):
        if not isinstance(value, str):
            return False
        want = json.loads(literal)
        hit = fnmatch.fnmatchcase(value, want) if "*" in want else value == want
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        hit = value == float(literal)
    return hit if op == "=" else not hit


class Parser:
    def __init__(self, tokens):
        self.t, self.i = tokens, 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self):
        self.i += 1
        return self.t[self.i - 1]

    def expr(self):
        node = self.conj()
        while self.peek() == "||":
            self.take()
            node = ("or", node, self.conj())
        return node

    def conj(self):
        node = self.atom()
        while self.peek() == "&&":
            self.take()
            node = ("and", node, self.atom())
        return node

    def atom(self):
        tok = self.take()
        if tok == "(":
            node = self.expr()
            if self.take() != ")":
                raise SystemExit("unbalanced parentheses")
            return node
        if self.peek() == "EXISTS":
            self.take()
            return ("exists", tok, True)
        if self.peek() == "NOT":
            self.take()
            self.take()
            return ("exists", tok, False)
        op, lit = self.take(), self.take()
        return ("cmp", tok, op, lit)


def evaluate(node, event):
    if node is None:
        return True
    kind = node[0]
    if kind == "or":
        return evaluate(node[1], event) or evaluate(node[2], event)
    if kind == "and":
        return evaluate(node[1], event) and evaluate(node[2], event)
    value, present = select(event, node[1])
    if kind == "exists":
        return present == node[2]
    return present and compare(value, node[2], node[3])


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    tokens = tokenize(sys.argv[1])
    tree = Parser(tokens).expr() if tokens else None
    events = passed = size = passed_size = 0
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                events += 1
                size += len(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if evaluate(tree, event):
                    passed += 1
                    passed_size += len(line)
    print(
        f"events {events}  passed {passed} ({100 * passed / max(events, 1):.1f} %)  "
        f"bytes {size}  passed bytes {passed_size} ({100 * passed_size / max(size, 1):.1f} %)"
    )


if __name__ == "__main__":
    main()
