#!/usr/bin/env python
"""Print the markdown table of saved benchmark summaries, e.g. of a run stopped before its end.

``fewcolor bench`` writes ``results/<protocol>/<method>.json`` as each method finishes and the dated table
only at the end; this prints the table of the methods that have a summary, in the order given:

    python scripts/results_table.py results/pokemon-frames grey lut exemplar unet cgan
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fewcolor.bench.report import budget_sentence, table_rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a protocol's results folder (results/<protocol>)")
    ap.add_argument("methods", nargs="+", help="method labels, in table order (the JSON files' stems)")
    args = ap.parse_args(argv)
    summaries = []
    for label in args.methods:
        path = args.folder / f"{label}.json"
        if not path.is_file():
            print(f"error: {path} does not exist (labels there: "
                  f"{', '.join(sorted(p.stem for p in args.folder.glob('*.json'))) or 'none'})", file=sys.stderr)
            return 2
        summaries.append(json.loads(path.read_text()))
    budgets = {json.dumps(s["budget"], sort_keys=True) for s in summaries}
    if len(budgets) > 1:
        print("error: these summaries have different budgets; one table needs one budget", file=sys.stderr)
        return 2
    print(budget_sentence(summaries[0]["budget"]) + ".\n")
    print(table_rows(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
