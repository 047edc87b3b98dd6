#!/usr/bin/env python3
"""Schemathesis, a property-based OpenAPI tester nobody on this project wrote,
against `tokportal sandbox`: every operation of spec/openapi.yaml, with its
examples, coverage, fuzzing and stateful phases, the checks below, a fixed seed
and bounded examples. Fails on any failure that .ci/schemathesis-allow.txt does
not list with its reason, and on a run that did not do its job: Schemathesis
exiting with an error (or with failures its report does not show), a report
that is missing or never says the run completed, an error other than a schema
Schemathesis cannot generate data for, or no test case run at all.

    python3 .ci/schemathesis.py <tokportal binary> [st executable]
"""

import collections
import json
import os
import subprocess
import sys
import tempfile

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "unsupported_method",
    "use_after_free",
])
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def allowed():
    """(label, check) -> reason, from the allow-list; every entry needs a reason."""
    entries = {}
    with open(os.path.join(HERE, "schemathesis-allow.txt"), encoding="utf-8") as listing:
        for number, line in enumerate(listing, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            entry, _, reason = line.partition("#")
            label, _, check = entry.partition("|")
            if not reason.strip():
                sys.exit(f"schemathesis-allow.txt:{number}: an entry needs a reason after '#'")
            entries[(label.strip(), check.strip())] = reason.strip()
    return entries


# Schemathesis' exit codes (schemathesis.cli.constants.ExitCode): 0 nothing
# found, 1 checks failed (what the allow-list judges), anything else an error
# (2: configuration, schema or internal error, or nothing tested; 130: stopped).
EXIT_OK, EXIT_FAILURES = 0, 1


def failures(report):
    """(label, check) of every failure in the NDJSON report, the cases run,
    and how the engine stopped (None: it never said it finished).

    An error is a failure too: `schema_error` when Schemathesis cannot
    generate data for a schema (its own limit: no request is sent), and
    `error:TYPE` for any other (a connection refused, a timeout), which the
    allow-list does not excuse."""
    found, cases, stop = set(), 0, None
    with open(report, encoding="utf-8") as events:
        for line in events:
            event = json.loads(line)
            if "NonFatalError" in event:
                error = event["NonFatalError"]
                kind = (error.get("value") or {}).get("type", "?")
                check = "schema_error" if kind == "Unsatisfiable" else f"error:{kind}"
                found.add((error.get("label", "?"), check))
            if "FatalError" in event:
                found.add(("(the run)", "fatal_error"))
            if "EngineFinished" in event:
                stop = event["EngineFinished"].get("stop_reason")
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder", {})
            cases += len(recorder.get("cases", {}))
            for checks in recorder.get("checks", {}).values():
                for check in checks:
                    if check.get("status") == "failure":
                        found.add((recorder.get("label", "?"), check.get("name", "?")))
    return found, cases, stop


def main():
    binary = sys.argv[1]
    st = sys.argv[2] if len(sys.argv) > 2 else "st"
    sandbox = subprocess.Popen(
        [binary, "sandbox", "--port", "0", "--rate-limit", "1000000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        first = sandbox.stdout.readline()
        if not first.startswith("listening on "):
            sys.exit(f"the sandbox did not start: {first!r}")
        url = first[len("listening on "):].strip()
        # Schemathesis keeps its cache (.schemathesis/) in the folder it runs
        # in: a throwaway one, so that no run writes into the repository.
        workdir = tempfile.mkdtemp()
        report = os.path.join(workdir, "schemathesis.ndjson")
        try:
            run = subprocess.run(
                [st, "run", os.path.join(ROOT, "spec", "openapi.yaml"), "--url", url,
                 "--header", "X-API-Key: sk_test_schemathesis",
                 "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful",
                 "--max-examples", "5", "--seed", "1", "--request-timeout", "10",
                 "--report", "ndjson", "--report-ndjson-path", report, "--no-color"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, cwd=workdir,
            )
        except subprocess.TimeoutExpired:
            sys.exit("schemathesis: FAILED: the run did not finish within 600 s")
        except OSError as e:
            sys.exit(f"schemathesis: FAILED: {st} could not be run: {e}")
        summary = run.stdout[run.stdout.rfind("SUMMARY"):] if "SUMMARY" in run.stdout else run.stdout[-3000:]
        print(summary)
        if not os.path.isfile(report):
            sys.exit(f"schemathesis: FAILED: exit {run.returncode} and no report at {report}")
        found, cases, stop = failures(report)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    # A run that did not do its job fails, whatever the allow-list says.
    broken = []
    if run.returncode not in (EXIT_OK, EXIT_FAILURES):
        broken.append(f"Schemathesis exited {run.returncode}: an errored run")
    if run.returncode == EXIT_FAILURES and not found:
        broken.append("Schemathesis exited 1, yet its report shows no failure")
    if stop != "completed":
        broken.append(f"the report never says the run completed (stop reason: {stop})")
    if cases == 0:
        broken.append("no test case was run")
    allow = allowed()
    unexpected = sorted(found - set(allow))
    by_check = collections.Counter(check for _, check in found)
    print(f"schemathesis: exit {run.returncode}; {cases} test cases; failures by check: {dict(by_check)}")
    for label, check in sorted(found & set(allow)):
        print(f"  allowed: {label} | {check}  ({allow[(label, check)]})")
    for stale in sorted(set(allow) - found):
        print(f"  note: the allow-list entry {stale[0]} | {stale[1]} matched nothing this run")
    for label, check in unexpected:
        print(f"  FAILED: {label} | {check}: not in .ci/schemathesis-allow.txt")
    print(f"schemathesis: {len(found) - len(unexpected)} failures allowed by the list, {len(unexpected)} not")
    for why in broken:
        print(f"  FAILED: {why}")
    sys.exit(1 if unexpected or broken else 0)


if __name__ == "__main__":
    main()
