#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Parses RFC 5322 messages back with Python's email package (an independent implementation)
and prints one JSON object per file: decoded headers, the text and HTML parts, the parser's
defects and wire-format checks (CRLF line ends, no line over 998 octets, ASCII-only headers).

Usage: parse_eml.py FILE...    (prints a JSON array)
"""

import email
import email.policy
import json
import sys


def parse(path):
    raw = open(path, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    lines = raw.split(b"\r\n")
    head = raw.split(b"\r\n\r\n", 1)[0]
    out = {
        "file": path,
        "from": str(msg["From"]),
        "to": str(msg["To"]),
        "subject": str(msg["Subject"]),
        "date": str(msg["Date"]),
        "message_id": str(msg["Message-ID"]),
        "mime_version": str(msg["MIME-Version"]),
        "content_type": msg.get_content_type(),
        "defects": [type(d).__name__ for part in msg.walk() for d in part.defects] +
                    [type(d).__name__ for d in msg.defects],
        "crlf_only": b"\n" not in raw.replace(b"\r\n", b""),
        "max_line": max(len(x) for x in lines),
        "ascii_headers": all(b < 128 for b in head),
        "date_parsed": msg["Date"].datetime.isoformat() if msg["Date"] and msg["Date"].datetime else None,
        "text": None,
        "html": None,
    }
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and out["text"] is None:
            out["text"] = part.get_content()
        elif part.get_content_type() == "text/html" and out["html"] is None:
            out["html"] = part.get_content()
    return out


def main():
    print(json.dumps([parse(p) for p in sys.argv[1:]], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
