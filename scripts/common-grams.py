#!/usr/bin/env python3
"""Writes src/prefilter/common_grams.rs: the four-byte sequences most common
in EKS audit events (ASCII lower-cased), most common first. The prefilter
searches each string from its least common four bytes.

Usage: scripts/common-grams.py EVENTS.ndjson [EVENTS.ndjson ...] > src/prefilter/common_grams.rs

Each input is one audit event message a line, as the reference traffic
generator (`gen_corpus.py`, see benches/data/README.md) writes in
`events.ndjson`; the table in the repository was made from
`--seed 11 --profile metadata --duration-s 300 --rate 25` and the same with
`--profile mixed` (not the seed of the benchmark's batches). Each input
weighs the same, whatever its size.
"""
import collections
import sys

# Sequences at least this common (per byte of messages, summed over inputs)
# are listed, at most LIMIT of them.
PER_BYTE = 1 / 20_000
LIMIT = 1024


def main(paths):
    total = collections.Counter()
    for path in paths:
        data = open(path, "rb").read().lower()
        counts = collections.Counter(data[i:i + 4] for i in range(len(data) - 3))
        for gram, n in counts.items():
            if b"\n" not in gram:
                total[gram] += n / len(data)
    listed = [g for g, f in total.most_common(LIMIT) if f / len(paths) >= PER_BYTE]
    out = sys.stdout
    out.write("//! Made by `scripts/common-grams.py`: do not edit. The four-byte\n")
    out.write("//! sequences most common in EKS audit events (ASCII lower-cased), most\n")
    out.write("//! common first.\n\n")
    out.write(f"pub(super) const COMMON_GRAMS: [&[u8; 4]; {len(listed)}] = [\n")
    for g in listed:
        text = "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in "\\\"" else f"\\x{b:02x}" for b in g)
        out.write(f'    b"{text}",\n')
    out.write("];\n")


if __name__ == "__main__":
    main(sys.argv[1:])
