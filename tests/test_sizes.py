from __future__ import annotations

import pytest

from mcuc.errors import MCUCError
from mcuc.sizes import parse_count, parse_size


@pytest.mark.parametrize("text,value", [("320k", 327680), ("320K", 327680), ("320KiB", 327680), ("1M", 1048576),
                                        ("327680", 327680), ("16kb", 16384), ("0.5k", 512)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "k", "12q", "-1", "0", "1.3", "3 GB"])
def test_parse_size_rejects(text):
    with pytest.raises(MCUCError, match="bad size"):
        parse_size(text)


@pytest.mark.parametrize("text,value", [("300M", 300e6), ("1.2g", 1.2e9), ("5e6", 5e6), ("12k", 12e3), ("7", 7.0)])
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "M", "3X", "1.2.3M"])
def test_parse_count_rejects(text):
    with pytest.raises(MCUCError, match="bad MAC count"):
        parse_count(text)
