"""Fixtures of the wire ring: the deployed function as the tooling reaches it, through each FC API."""

from __future__ import annotations

import pytest

from tests.fakes.fc import FakeFc
from tests.fakes.fc3 import FakeFc3
from tests.tooling import Fc


@pytest.fixture(params=["fc3", "fc2"])
def fc(request: pytest.FixtureRequest) -> Fc:
    """Each test that takes it runs against the FC 3.0 API with the CLI's defaults, and the FC 2.0 API."""
    if request.param == "fc3":
        fake3: FakeFc3 = request.getfixturevalue("fake_fc3")
        return Fc("fc3", fake3, ["--fc-endpoint", fake3.url])
    fake2: FakeFc = request.getfixturevalue("fake_fc")
    return Fc("fc2", fake2, ["--api", "fc2", "--service", "default", "--fc-endpoint", fake2.url])
