"""Per-module counts of `mutmut run`'s verdicts: killed, survived, timed out (and the rest).

Reads `mutmut results --all true` (one "    <module>.<function>__mutmut_<n>: <status>" line per
mutant) from the current directory's mutmut state. `mutmut show <name>` shows one mutant.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name("mutmut"))
LINE = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+)$")
COLUMNS = ("killed", "survived", "timeout")


def module_of(name: str) -> str:
    """``pkg.mod.x_func__mutmut_3`` and ``pkg.mod.xǁClassǁmethod__mutmut_3`` -> ``pkg.mod``."""
    return re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]


def main() -> int:
    out = subprocess.run([MUTMUT, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in out.splitlines():
        match = LINE.match(line)
        if match:
            counts[module_of(match["name"])][match["status"].strip()] += 1
    if not counts:
        print("no mutants found: run `mutmut run` first")
        return 1
    others = sorted({status for c in counts.values() for status in c} - set(COLUMNS))
    header = ["module", *COLUMNS, *others]
    rows = [[module, *(str(c[s]) for s in (*COLUMNS, *others))] for module, c in sorted(counts.items())]
    total = Counter()
    for c in counts.values():
        total.update(c)
    rows.append(["total", *(str(total[s]) for s in (*COLUMNS, *others))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    survived = [m for m in out.splitlines() if m.strip().endswith(": survived")]
    if survived:
        print(f"\n{len(survived)} survived; see one with `mutmut show <name>`:")
        print("\n".join(survived[:40]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
