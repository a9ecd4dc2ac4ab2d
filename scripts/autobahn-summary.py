#!/usr/bin/env python3
"""Summarises a kosoku/Autobahn report directory (usage: autobahn-summary.py REPORT_DIR [MAX_FRAME_BYTES]).

Parley's /ws is not an echo server: it greets with a `hello` frame and answers every data message
it cannot use (all of Autobahn's payloads) with one `error` frame. So kosoku's own verdict is FAILED
for every echo case. This script prints kosoku's counts, then re-judges each case the way Parley
behaves (docs/CONFORMANCE.md):

  OK          kosoku says OK (or INFORMATIONAL, which the spec leaves open)
  REPLIED     the events match once the hello is dropped and "one error frame per message" stands
              for "the echo"; the closing handshake was clean (or kosoku itself killed the
              connection waiting for an echo that never comes)
  TOO-LARGE   a 9.* message above the server's --max-frame-bytes (given as MAX_FRAME_BYTES), refused
              with close 1009 on purpose
  CHECK       none of the above: look at the case report
"""
import collections
import json
import os
import re
import sys

HELLO = '{"type":"hello"'
ERROR = '{"type":"error"'


def case_key(cid):
    return tuple(int(p) for p in cid.split("."))


def adjusted(events):
    out = []
    for e in events:
        if e[0] == "message" and isinstance(e[1], str) and e[1].startswith(HELLO):
            continue
        out.append(("reply",) if e[0] == "message" else tuple(e))
    return out


def payload_len(description):
    m = re.search(r"length (\d+) \* 2\*\*(\d+)", description or "")
    return int(m.group(1)) * 2 ** int(m.group(2)) if m else 0


def judge(cid, entry, detail, max_frame):
    b, bc = entry["behavior"], entry["behaviorClose"]
    if b in ("OK", "INFORMATIONAL", "NON-STRICT") and bc in ("OK", "INFORMATIONAL"):
        return "OK"
    close_ok = bc in ("OK", "INFORMATIONAL") or (detail.get("failedByMe") and detail.get("droppedByMe"))
    if cid.startswith("9."):
        result = detail.get("result") or ""
        if entry.get("remoteCloseCode") == 1009 or payload_len(detail.get("description")) > max_frame:
            return "TOO-LARGE"
        if close_ok and ("but got" in result or "differs from what I sent" in result):
            return "REPLIED"
        return "CHECK"
    got = adjusted(detail.get("received") or [])
    for verdict, events in (detail.get("expected") or {}).items():
        if verdict in ("OK", "NON-STRICT", "INFORMATIONAL") and adjusted(events) == got and close_ok:
            return "REPLIED"
    return "CHECK"


def main():
    out = sys.argv[1]
    max_frame = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    for agent, cases in index.items():
        print(f"{len(cases)} cases")
        kosoku = collections.Counter(c["behavior"] for c in cases.values())
        print("  kosoku behaviour: " + ", ".join(f"{k} {v}" for k, v in sorted(kosoku.items())))
        closes = collections.Counter(c["behaviorClose"] for c in cases.values())
        print("  kosoku close behaviour: " + ", ".join(f"{k} {v}" for k, v in sorted(closes.items())))
        verdicts, groups, check = collections.Counter(), collections.defaultdict(collections.Counter), []
        for cid in sorted(cases, key=case_key):
            entry = cases[cid]
            try:
                with open(os.path.join(out, entry["reportfile"])) as f:
                    detail = json.load(f)
            except OSError:
                detail = {}
            v = judge(cid, entry, detail, max_frame)
            verdicts[v] += 1
            groups[cid.split(".")[0]][v] += 1
            if v == "CHECK":
                check.append(
                    f"    {cid}: {entry['behavior']}/{entry['behaviorClose']} close={entry.get('remoteCloseCode')}: "
                    f"{detail.get('result', '')} | {detail.get('resultClose', '')}"
                )
        print("  Parley verdict: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
        for g in sorted(groups, key=int):
            print(f"    {g}.*: " + ", ".join(f"{k} {v}" for k, v in sorted(groups[g].items())))
        if check:
            print("  to check:")
            print("\n".join(check))
        return 1 if check else 0


if __name__ == "__main__":
    sys.exit(main())
