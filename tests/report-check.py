#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks for the Rapport Timeline tests.

  report-check.py sheet-equals-csv FAKE_URL CSV_DIR SUMMARY_JSON
      every tab of the fake Google sheet holds exactly the cells of its CSV file (read back with
      Python's csv module, BOM stripped) and its grid is sized to the data (rows + header, 12 or
      14 columns); prints one line per tab.
  report-check.py requests FAKE_URL PATTERN
      how many requests the fake received whose "METHOD path" contains PATTERN.
  report-check.py tokens FAKE_URL
      how many access tokens the fake issued.
  report-check.py dump FAKE_URL
      the fake's sheets (to compare two states).
  report-check.py control FAKE_URL JSON
"""

import csv
import io
import json
import sys
import urllib.request


def get(url):
    with urllib.request.urlopen(url + "/_state", timeout=30) as r:
        return json.load(r)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        data = f.read()
    if not data.startswith("\ufeff"):
        sys.exit(f"{path}: no UTF-8 BOM")
    rows = list(csv.reader(io.StringIO(data[1:], newline="")))
    if not data.endswith("\r\n"):
        sys.exit(f"{path}: records must end with CRLF")
    return rows


def trim(row):
    row = list(row)
    while row and row[-1] == "":
        row.pop()
    return row


def sheet_equals_csv(url, csv_dir, summary_path):
    with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
    sheets = get(url)["sheets"]
    for tab, name in summary["files"].items():
        rows = read_csv(f"{csv_dir}/{name}")
        sheet = sheets.get(tab)
        if sheet is None:
            sys.exit(f"tab {tab!r} missing from the sheet (has {list(sheets)})")
        want = [trim(r) for r in rows]
        while want and not want[-1]:
            want.pop()
        got = sheet["values"]
        if got != want:
            for i, (a, b) in enumerate(zip(got, want)):
                if a != b:
                    sys.exit(f"tab {tab!r} row {i + 1}: sheet {a!r} != csv {b!r}")
            sys.exit(f"tab {tab!r}: sheet has {len(got)} rows, csv {len(want)}")
        cols = 14 if tab == "Alertes Maintenance" else 12
        if sheet["rows"] != len(rows) or sheet["columns"] != cols:
            sys.exit(f"tab {tab!r}: grid {sheet['rows']}x{sheet['columns']}, expected {len(rows)}x{cols}")
        print(f"ok - sheet tab {tab!r} == {name} ({len(rows) - 1} rows, grid {sheet['rows']}x{sheet['columns']})")


def main():
    cmd, url = sys.argv[1], sys.argv[2]
    if cmd == "sheet-equals-csv":
        sheet_equals_csv(url, sys.argv[3], sys.argv[4])
    elif cmd == "requests":
        print(sum(1 for r in get(url)["requests"] if sys.argv[3] in r["request"]))
    elif cmd == "tokens":
        print(get(url)["tokens_issued"])
    elif cmd == "dump":
        print(json.dumps(get(url)["sheets"], sort_keys=True, ensure_ascii=False))
    elif cmd == "control":
        req = urllib.request.Request(url + "/_control", data=sys.argv[3].encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
