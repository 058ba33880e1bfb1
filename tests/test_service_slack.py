"""Service methods added for the Slack surface."""

from __future__ import annotations

import pytest

from bot.errors import Refused
from tests.helpers import add_partner


def test_set_digest_channel_sets_and_clears_only_the_members_partner(service, admin):
    mine = add_partner(admin, "Acme GmbH", "UMEMBER1")
    add_partner(admin, "Rival AG", "UOTHER1")
    view = service.set_digest_channel("UMEMBER1", "CDIGEST")
    assert (view.id, view.digest_channel_id) == (mine, "CDIGEST")
    assert service.partner_of("UOTHER1").digest_channel_id is None
    assert service.set_digest_channel("UMEMBER1", None).digest_channel_id is None


def test_set_digest_channel_refuses_a_stranger(service, admin):
    add_partner(admin, "Acme GmbH", "UMEMBER1")
    with pytest.raises(Refused) as refused:
        service.set_digest_channel("USTRANGER", "CDIGEST")
    assert refused.value.code == "not_a_member"
