"""Shared fixtures and the network policy: tests never leave the machine.

Two layers, both in force before the first fixture (session-scoped ones included) is set up:
pytest-socket (its ``--allow-hosts`` set in ``pytest_configure`` below) refuses every
``connect`` except to loopback, and ``pytest_configure`` replaces ``socket.getaddrinfo`` for
the whole run so that not even a DNS lookup of another host is made.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
import sys
from pathlib import Path

import pytest

# The project's libraries are imported where they are used, so that this file loads in any
# Python and a plain `pytest` outside the project's environment gets one clear line.
_NEEDED = ("pytest_socket", "numpy", "matplotlib", "hypothesis", "nbformat")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

_real_getaddrinfo = socket.getaddrinfo


class NetworkBlocked(ConnectionRefusedError):
    """An OSError, as a real closed network would raise."""


def is_loopback(host) -> bool:
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only_getaddrinfo(host, *args, **kwargs):
    if not is_loopback(host):
        raise NetworkBlocked(f"test tried to resolve {host!r}: tests never touch the internet")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        pytest.exit(f"these tests need the project's environment ({', '.join(missing)} "
                    f"missing in {sys.executable}): run `python tasks.py test`, or "
                    f"`.venv/bin/pytest` (Windows: .venv\\Scripts\\pytest)", returncode=4)
    # pytest-socket's options, set here rather than in addopts, so that a pytest without the
    # plugin reaches the message above instead of "unrecognized arguments"
    config.option.allow_hosts = "127.0.0.1,::1"
    config.option.allow_unix_socket = True
    socket.getaddrinfo = loopback_only_getaddrinfo


def pytest_collection_modifyitems(config, items):
    """A test that needs the executed notebook starts a kernel: it is slow."""
    for item in items:
        if {"executed_notebook", "report_pdf"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config):
    socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(scope="session")
def mnist_arrays():
    """The real MNIST arrays, loaded once (from the project's data/mnist)."""
    import mnist

    return mnist.load()


@pytest.fixture(scope="session")
def session_network_probe():
    """What a session-scoped fixture sees of the network (for test_offline.py)."""
    try:
        socket.getaddrinfo("ossci-datasets.s3.amazonaws.com", 443)
        resolved = True
    except NetworkBlocked:
        resolved = False
    return {"resolved": resolved, "connect": socket.socket.connect.__name__}


@pytest.fixture(scope="session")
def executed_notebook(tmp_path_factory):
    """The report notebook run once in a reduced (quick) build in a fresh kernel: (the
    executed notebook, the folder it wrote its figures and metrics into)."""
    import nbformat

    from tools import execute

    products = tmp_path_factory.mktemp("executed")
    nb, _ = execute.read_notebook(ROOT / "assignment1.ipynb")
    executed = execute.run(nb, ROOT, products, True, 600)[0]
    return nbformat.from_dict(executed), products


@pytest.fixture(scope="session")
def report_pdf(executed_notebook, tmp_path_factory):
    """The report PDF of the session's executed notebook, built once: its path."""
    from tools import config, render

    pdf = tmp_path_factory.mktemp("report") / "assignment1.pdf"
    pdf.write_bytes(render.pdf_bytes(executed_notebook[0],
                                     config.title_page(ROOT / "report.toml")))
    return pdf


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
