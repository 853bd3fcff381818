"""The IDX reader: correct arrays for valid files, a clear ValueError for anything else."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from helpers import idx_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

import mnist


def test_round_trip_uint8():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(mnist.parse_idx(idx_bytes(a)), a)


def test_big_endian_int32_is_converted():
    values = np.array([1, -2, 70000], dtype=">i4")
    data = struct.pack(">BBBBI", 0, 0, 0x0C, 1, 3) + values.tobytes()
    out = mnist.parse_idx(data)
    assert out.tolist() == [1, -2, 70000] and out.dtype.isnative


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "at least 4"),
        (b"\x00\x00", "at least 4"),
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "magic"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "unknown IDX value type"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "trailing bytes"),
    ],
)
def test_malformed_files_name_the_problem(data, match):
    with pytest.raises(ValueError, match=match) as info:
        mnist.parse_idx(data, "some-file")
    assert "some-file" in str(info.value)


def _check_outcome(data: bytes) -> None:
    """The property: either a correct array, or a ValueError naming the file."""
    try:
        array = mnist.parse_idx(data, "fuzzed-file")
    except ValueError as exc:
        assert "fuzzed-file" in str(exc)
        return
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    assert array.shape == shape
    assert array.nbytes == len(data) - 4 - 4 * ndim


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data):
    _check_outcome(data)


@st.composite
def mutated_idx(draw):
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3))
    array = np.frombuffer(draw(st.binary(min_size=int(np.prod(shape)),
                                         max_size=int(np.prod(shape)))), dtype=np.uint8)
    data = bytearray(idx_bytes(array.reshape(shape)))
    mutation = draw(st.sampled_from(["none", "truncate", "extend", "magic", "type", "count",
                                     "ndim", "flip"]))
    if mutation == "truncate" and data:
        del data[draw(st.integers(0, len(data) - 1)):]
    elif mutation == "extend":
        data += draw(st.binary(min_size=1, max_size=8))
    elif mutation == "magic":
        data[draw(st.integers(0, 1))] = draw(st.integers(1, 255))
    elif mutation == "type":
        data[2] = draw(st.integers(0, 255))
    elif mutation == "count":
        data[4:8] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    elif mutation == "ndim":
        data[3] = draw(st.integers(0, 255))
    elif mutation == "flip":
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


@settings(max_examples=1500, deadline=None)
@given(mutated_idx())
def test_fuzz_mutated_headers(data):
    _check_outcome(data)
