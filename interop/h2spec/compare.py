#!/usr/bin/env python3
"""Compares an h2spec JUnit report with interop/h2spec/known-failures.

    compare.py REPORT KNOWN_FAILURES EXPECTED_CASES LABEL

Names every case `<spec>/<section>/<n>` (h2spec's own case selector, e.g.
`http2/3.5/2`): the report has each case's group (`package`) and description, in
the order h2spec numbers them, so this works for a run of all cases (which is what
interop/h2spec/run does), not for a run of some sections only.

Prints one line per case that did not simply pass:

    FAIL <id> <description>: <what h2spec expected and got>
    SKIP <id> <description>                 (counted as a failure: see below)
    KNOWN <id> <description>: <...> (known: <reason>)
    PASSED-BUT-KNOWN <id> <description>     (listed, yet passed: a failure)

then `<LABEL>: N cases, N passed, N known, N unexpected`, and on the last line
`RESULT <passed> <known> <unexpected>` for the caller. Exits 1 on anything
unexpected: a failure that is not listed, a listed case that passed (so the list
stays true, and a renumbering in a newer h2spec shows up), a skipped case (every
case applies to the route h2spec is pointed at; a skip means a case tested
nothing), or a case count other than EXPECTED_CASES.
"""

import sys
import xml.etree.ElementTree as ET


def account(text):
    """h2spec's account of a failure on one line: `expected A or B; got C`.

    A `<failure>` holds `Expect:\n<lines>\nActual:\n<line>`; an `<error>` holds
    the same lines without the two labels (this h2spec files its own test errors
    as errors), or just a message when the case could not run.
    """
    lines = [" ".join(l.split()) for l in (text or "").splitlines()]
    lines = [l for l in lines if l]
    if "Actual:" in lines:
        i = lines.index("Actual:")
        expected = [l for l in lines[:i] if l != "Expect:"]
        actual = lines[i + 1:]
    elif len(lines) >= 2:
        expected, actual = lines[:-1], lines[-1:]
    else:
        return "error: " + (lines[0] if lines else "(no message)")
    return f"expected {' or '.join(expected)}; got {' '.join(actual)}"


def main():
    report, known_path, expected, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    known = {}
    with open(known_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            case, _, reason = line.partition(" ")
            known[case] = reason.strip()

    root = ET.parse(report).getroot()
    cases = []  # (id, description, outcome, detail)
    for suite in root.iter("testsuite"):
        group = suite.get("package", "?")
        for n, tc in enumerate(suite.findall("testcase"), start=1):
            case = f"{group}/{n}"
            desc = tc.get("classname", "")
            failure = tc.find("failure")
            error = tc.find("error")
            if failure is not None:
                cases.append((case, desc, "fail", account(failure.text)))
            elif error is not None:
                cases.append((case, desc, "fail", account(error.text)))
            elif tc.find("skipped") is not None:
                cases.append((case, desc, "skip", ""))
            else:
                cases.append((case, desc, "pass", ""))

    passed = known_failed = unexpected = 0
    seen = set()
    for case, desc, outcome, detail in cases:
        seen.add(case)
        if outcome == "pass":
            if case in known:
                unexpected += 1
                print(f"PASSED-BUT-KNOWN {case} {desc} (listed in known-failures: remove it)")
            else:
                passed += 1
        elif outcome == "skip":
            unexpected += 1
            print(f"SKIP {case} {desc} (a skipped case tested nothing)")
        elif case in known:
            known_failed += 1
            print(f"KNOWN {case} {desc}: {detail} (known: {known[case]})")
        else:
            unexpected += 1
            print(f"FAIL {case} {desc}: {detail}")

    for case in sorted(set(known) - seen):
        print(f"# NOTE known-failures lists {case}, which this run does not have")
    if len(cases) != expected:
        unexpected += 1
        print(f"FAIL {label}: h2spec ran {len(cases)} cases, expected {expected} "
              "(another h2spec version? check the list and the count in interop/h2spec/run)")
    print(f"{label}: {len(cases)} cases, {passed} passed, {known_failed} known, {unexpected} unexpected")
    print(f"RESULT {passed} {known_failed} {unexpected}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
