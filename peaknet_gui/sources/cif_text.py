"""A small reader for the text part of a CBF (imgCIF) header: items, loops, text fields.

Only what detector headers use: ``_category.item value`` pairs, ``loop_`` tables, quoted
strings and ``;``-delimited text fields.  ``parse_cif(text)`` returns
``{"_category.item": [value, ...]}`` (a loop's column is a list with one value per row; a plain
item is a one-element list) plus the raw text fields (e.g. the miniCBF header contents).
"""

from __future__ import annotations

import shlex


def _tokens(text: str):
    """Yield CIF tokens; a ``;`` text field yields one token (its content, without the ``;``)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(";"):
            body = [line[1:]]
            i += 1
            while i < len(lines) and not lines[i].startswith(";"):
                body.append(lines[i])
                i += 1
            i += 1
            yield ("text", "\n".join(body).strip("\n"))
            continue
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            parts = shlex.split(stripped, comments=True, posix=True)
        except ValueError:
            parts = stripped.split()
        for p in parts:
            yield ("word", p)


def parse_cif(text: str) -> dict:
    """Items and loop columns of a CIF data block (values as strings)."""
    out: dict = {}
    toks = list(_tokens(text))
    i = 0
    n = len(toks)
    while i < n:
        kind, tok = toks[i]
        if kind == "word" and tok.lower() == "loop_":
            i += 1
            names = []
            while i < n and toks[i][0] == "word" and toks[i][1].startswith("_"):
                names.append(toks[i][1])
                i += 1
            values = []
            while i < n and not (toks[i][0] == "word" and (toks[i][1].startswith("_") or toks[i][1].lower() in (
                    "loop_",) or toks[i][1].lower().startswith("data_"))):
                values.append(toks[i][1])
                i += 1
            if names:
                for k, name in enumerate(names):
                    out.setdefault(name, []).extend(values[k::len(names)])
            continue
        if kind == "word" and tok.startswith("_"):
            if i + 1 < n and not (toks[i + 1][0] == "word" and (toks[i + 1][1].startswith("_") or
                                                               toks[i + 1][1].lower() == "loop_")):
                out.setdefault(tok, []).append(toks[i + 1][1])
                i += 2
            else:
                i += 1
            continue
        i += 1
    return out


def column(cif: dict, name: str) -> list:
    return cif.get(name, [])


def first_float(cif: dict, name: str):
    for v in cif.get(name, []):
        try:
            return float(v)
        except (TypeError, ValueError):
            continue
    return None


def rows(cif: dict, *names: str) -> list:
    """The rows of a loop as tuples of the given columns (shortest column decides the count)."""
    cols = [cif.get(n, []) for n in names]
    if not cols or any(not c for c in cols):
        return []
    return list(zip(*cols))
