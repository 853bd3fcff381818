"""Tests never touch the internet, from the very first fixture on."""

from __future__ import annotations

import socket

import pytest
from conftest import NetworkBlocked


def test_a_session_fixture_cannot_resolve_or_connect(session_network_probe):
    assert session_network_probe["resolved"] is False
    # pytest-socket's guard replaces connect before any fixture of a test is set up
    assert session_network_probe["connect"] == "guarded_connect"


def test_no_lookup_or_connection_outside_loopback():
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.org", 443)
    assert socket.socket.connect.__name__ == "guarded_connect"
    assert socket.getaddrinfo("127.0.0.1", 80)  # loopback stays open for the download tests
