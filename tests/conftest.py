"""Suite-wide rules. A skipped test is not a passing one: a skip fails, with its reason and the fix."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} would have been skipped ({reason}); this suite allows no skips. "
            "Install everything the tests need with `make test` (or `promptembedder setup tests`)."
        )
