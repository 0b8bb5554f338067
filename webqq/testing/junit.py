"""JUnit XML for scenario results, the report format CI systems read.

junit: one ``<testsuite>`` per run, one ``<testcase>`` per scenario (``classname`` the
file's name, ``name`` the scenario's), a ``<failure>`` or ``<error>`` carrying the reason
in its message and the whole report in its text, the conversation in ``<system-out>``.
ElementTree escapes markup; characters XML 1.0 cannot hold (a bot may send control
characters) are written as ``\\xNN``. It writes one file and touches nothing else.
"""
import datetime
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Sequence

from .runner import ERROR, FAILED

__all__ = ["junit_xml", "write_junit"]

# Characters outside XML 1.0's Char production (besides tab, LF and CR).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda match: "\\x%02x" % ord(match.group()) if ord(match.group()) < 256
                        else "\\u%04x" % ord(match.group()), text)


def junit_xml(results: Sequence, suite: str = "webqq scenarios") -> bytes:
    """The JUnit XML document for ``results`` (runner.Result values)."""
    failures = sum(r.outcome == FAILED for r in results)
    errors = sum(r.outcome == ERROR for r in results)
    total = sum(r.seconds for r in results)
    root = ElementTree.Element("testsuites", tests=str(len(results)), failures=str(failures),
                               errors=str(errors), time="%.3f" % total)
    element = ElementTree.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures),
        errors=str(errors), skipped="0", time="%.3f" % total,
        timestamp=datetime.datetime.now().replace(microsecond=0).isoformat())
    for result in results:
        case = ElementTree.SubElement(
            element, "testcase", classname=_clean(result.scenario.path.stem),
            name=_clean(result.scenario.name), file=_clean(str(result.scenario.path)),
            time="%.3f" % result.seconds)
        if result.outcome in (FAILED, ERROR):
            first = result.reason.splitlines()[0] if result.reason else result.outcome
            if result.step is not None:
                first = "step %d: %s" % (result.step.number, first)
            problem = ElementTree.SubElement(case, "failure" if result.outcome == FAILED
                                             else "error", message=_clean(first))
            problem.text = _clean(result.report())
        if result.transcript:
            ElementTree.SubElement(case, "system-out").text = _clean(
                "\n".join(result.transcript))
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def write_junit(path, results: Sequence, suite: str = "webqq scenarios") -> None:
    """Write ``junit_xml(results)`` to ``path``."""
    Path(path).write_bytes(junit_xml(results, suite))
