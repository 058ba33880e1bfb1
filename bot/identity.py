"""Who a Slack user is across workspaces: (enterprise, team, user), kept as one string key.

A Slack user id means something only inside its workspace (or Enterprise Grid org), so every
member, manager and submitter is stored as a key: the bare user id for someone of the vendor's
own workspace (`VENDOR_TEAM_ID`, or the one workspace in single-workspace mode), and
`ORG:USER` for everyone else, where ORG is the user's Enterprise Grid org id if the request
came from inside it, else the user's team id. The same user id in two workspaces is two people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import InvalidInput

_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
_ORG = re.compile(r"[TE][A-Z0-9]{2,20}")


@dataclass(frozen=True)
class Actor:
    """The person behind a request, as Slack names them."""

    user_id: str
    team_id: str | None = None
    enterprise_id: str | None = None

    @property
    def org(self) -> str | None:
        return self.enterprise_id or self.team_id


def key_of(actor: Actor, home: str | None) -> str:
    """The stored key of `actor`; `home` is the vendor's team or org id (None: single mode)."""
    if home is None or actor.org is None or home in (actor.team_id, actor.enterprise_id):
        return actor.user_id
    return f"{actor.org}:{actor.user_id}"


def split_key(key: str) -> tuple[str | None, str]:
    """(org, user id) of a stored key; org None means the vendor's own workspace."""
    org, _, user = key.rpartition(":")
    return (org or None), user


def org_of(key: str) -> str | None:
    """The org of a stored key: None for the vendor's own workspace."""
    return split_key(key)[0]


def same_org_key(key: str, slack_id: str) -> str:
    """The key of a channel (or user) id seen by the person of `key`: in their workspace.
    Channels are keyed like users, so a notice to it goes with that workspace's token."""
    org = org_of(key)
    return slack_id if org is None else f"{org}:{slack_id}"


def user_id_of(key: str) -> str:
    """The Slack user id to put in an API call or a mention, without the org."""
    return split_key(key)[1]


def parse_member(text: str, home: str | None, field: str = "member") -> str:
    """`TEAM_ID:USER_ID` or a bare user id (the vendor's workspace), as an operator types it,
    turned into a stored key."""
    org, user = split_key(text.strip())
    if not _USER.fullmatch(user) or (org is not None and not _ORG.fullmatch(org)):
        raise InvalidInput(
            {
                field: f"{text!r} is not a Slack user id: it looks like U0123ABCD, or "
                "T0123ABCD:U0123ABCD for a member of another workspace."
            }
        )
    if org is None or org == home:
        return user
    return f"{org}:{user}"
