"""Detectors whose modules arrive as separate Karabo bridge sources, one source per module.

A bridge forwarding the detector's own pipelines (a TrainMatcher, ``karabo-bridge-serve-run
--include 'SPB_IRDA_JF4M/DET/JNGFR*:daqOutput'``) sends each module under its own name, with
European XFEL's module naming (as EXtra-data's detector components read it):

* AGIPD, LPD, DSSC: ``{DET}/DET/{n}CH0:xtdf`` (raw) or ``{DET}/CORR/{n}CH0:output`` (corrected),
  module numbers from 0;
* JUNGFRAU: ``{DET}/DET/JNGFR{nn}:daqOutput`` (also ``MODULE_{n}``, ``RECEIVER-{n}``) or
  ``{DET}/CORR/JNGFR{nn}:output``, module numbers from 1.

The modules of one detector (same ``{DET}/{DET|CORR|...}``) are stacked in module order, the
slab layout of EXtra-geom's CrystFEL geometries; a module missing from a train is filled (NaN,
or 0 for integer data).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Optional

_MODULE = re.compile(r"^(?P<det>[^/]+)/(?P<kind>[^/]+)/"
                     r"(?:(?P<zero>\d+)CH\d+|(?:JNGFR|MODULE_|RECEIVER-)(?P<one>\d+))(?::.*)?$")
# module counts told by the detector's name (European XFEL's instrument naming)
_NAMED_COUNTS = (("JF4M", 8), ("JF1M", 2), ("JF500K", 1), ("AGIPD1M", 16), ("AGIPD500K", 8),
                 ("LPD1M", 16), ("DSSC1M", 16))
_CORRECTED_KINDS = ("CORR", "CAL")


def module_of(name: str) -> Optional[tuple]:
    """(detector group ``DET/KIND``, module index from 0) of a per-module source name, or None."""
    m = _MODULE.match(name)
    if not m:
        return None
    index = int(m["zero"]) if m["zero"] is not None else int(m["one"]) - 1
    return (f"{m['det']}/{m['kind']}", index) if index >= 0 else None


def module_groups(names) -> dict:
    """{detector group: {module index: source name}} of the per-module sources among ``names``."""
    groups: dict = {}
    for n in names:
        got = module_of(n)
        if got is not None:
            groups.setdefault(got[0], {}).setdefault(got[1], n)
    return groups


def module_slots(group: str, members: dict) -> list:
    """Source name (None: missing) per module slot, in module order.

    The slot count is the detector name's (``JF4M``: 8, ``AGIPD1M``: 16, ...) or the highest
    module number seen + 1; a detector whose name says fewer modules than its numbers reach
    (``HED_IA1_JF500K3/DET/JNGFR03``: one module numbered 3) gets its modules in number order.
    """
    det = group.split("/")[0].upper().replace("-", "_")
    named = next((n for tag, n in _NAMED_COUNTS if re.search(rf"(^|_){tag}(_|$|\d)", det)), None)
    if named is not None and max(members) >= named:
        return [members[i] for i in sorted(members)]
    n = named if named is not None else max(members) + 1
    return [members.get(i) for i in range(n)]


def _matches(group: str, members: dict, source: str) -> bool:
    s = source.rstrip("/")
    if group == s or group.startswith(s + "/") or group.split("/")[0] == s:
        return True
    return any(fnmatch.fnmatchcase(n, source) for n in members.values())


def select_modules(names, source: Optional[str]) -> Optional[tuple]:
    """(group, [source name or None per module slot]) of the detector to stack, or None.

    ``source`` (from the URL) names a detector (``SPB_IRDA_JF4M``, ``SPB_IRDA_JF4M/CORR``) or is a
    glob of its module sources (``SPB_IRDA_JF4M/DET/JNGFR*:daqOutput``); without one the detector
    with the most modules present is taken, corrected before raw.
    """
    groups = module_groups(names)
    if source is not None:
        groups = {g: m for g, m in groups.items() if _matches(g, m, source)}
    if not groups:
        return None
    group = min(groups, key=lambda g: (-len(groups[g]), g.split("/")[1] not in _CORRECTED_KINDS, g))
    return group, module_slots(group, groups[group])
