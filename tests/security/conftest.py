"""Each identity of the stack (admin, the services, the reader) as settings."""

from __future__ import annotations

import pytest

from riverguard.settings import Settings
from tests.support.identities import WHO, identity


@pytest.fixture(scope="session")
def identities(settings: Settings) -> dict[str, Settings]:
    return {who: identity(settings, who) for who in WHO}
