import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the long statistical tests (full coverage runs, thousands of draws)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI runs the smaller version of this check)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
