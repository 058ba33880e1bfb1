"""Pure Block Kit builders: every modal, message and Home view the app shows, one module per
surface.

Nothing here talks to Slack or the database; each function takes value objects from the
service and returns a dict. Every user-typed string goes through `escape` (mrkdwn) or is put
into a plain_text object, so a customer named `<!channel>` pings no one.

- `common`: Block Kit primitives, status labels, manager contacts, ephemeral/refusal/error replies
- `modal`: the preregistration modal (R7) and its confirmation
- `customers`: the customer list (R9, R11), its filters and paging, delete and check replies
- `review`: the manager review post (R3), the reject modal, the outcome DM
- `home`: App Home
- `onboarding`: linking a partner's workspace and who there may preregister (distributed mode)
- `help`: `/preregister help` and `/preregister flow` (R10)

The listeners and tests use these as `views.X`, so every public name is re-exported here
(`__all__`). The package has no `register` hook; `handlers.register` imports it and moves on.
"""

from __future__ import annotations

from handlers.mrkdwn import escape
from handlers.views.common import (
    STATUS_EMOJI,
    STATUS_LABELS,
    VALUE_ACTION,
    button,
    contact_lines,
    contact_plain,
    context,
    day,
    divider,
    ephemeral,
    error_message,
    error_modal,
    header,
    md,
    next_step,
    plain,
    refusal_message,
    section,
    status_label,
    when,
)
from handlers.views.customers import (
    DEFAULT_FILTER,
    DELETABLE,
    FILTERS,
    LIST_DELETE_ACTION,
    LIST_DELETE_SELECTED_ACTION,
    LIST_PAGE_ACTION,
    LIST_SELECT_ACTION,
    LIST_SELECT_BLOCK,
    LIST_TOGGLE_ACTION,
    PAGE_SIZE,
    SEND_INVITATION_ACTION,
    check_message,
    customer_list,
    delete_message,
    delete_results,
    list_state,
    mask_email,
    mask_mobile,
)
from handlers.views.help import (
    COMMANDS,
    FLOW_STEPS,
    RULES_IN_BRIEF,
    flow_message,
    help_message,
)
from handlers.views.home import (
    HOME_EXPIRING_LIMIT,
    HOME_QUEUE_LIMIT,
    QUEUE_HEADER_BLOCK,
    home_view,
)
from handlers.views.modal import (
    FIELD_BLOCKS,
    PREREGISTER_CALLBACK,
    confirmation_modal,
    preregistration_modal,
)
from handlers.views.onboarding import (
    EVERYONE,
    LINK_APPROVE_ACTION,
    LINK_CALLBACK,
    LINK_FIELDS,
    LINK_OPEN_ACTION,
    LINK_PICK_ACTION,
    LINK_REJECT_ACTION,
    LINK_REJECT_CALLBACK,
    PICKED,
    POLICY_MODE_BLOCK,
    POLICY_PICKED_BLOCK,
    POLICY_SAVE_ACTION,
    link_decided_message,
    link_modal,
    link_outcome_dm,
    link_reject_modal,
    link_request_message,
    link_sent_modal,
    notice_modal,
    onboarding_blocks,
    policy_saved_line,
)
from handlers.views.review import (
    APPROVE_ACTION,
    REJECT_ACTION,
    REJECT_CALLBACK,
    reject_modal,
    review_decided_message,
    review_outcome_dm,
    review_request_message,
)

__all__ = [
    "escape",  # from handlers.mrkdwn; tests check output with `views.escape`
    # common
    "STATUS_EMOJI",
    "STATUS_LABELS",
    "VALUE_ACTION",
    "button",
    "contact_lines",
    "contact_plain",
    "context",
    "day",
    "divider",
    "ephemeral",
    "error_message",
    "error_modal",
    "header",
    "md",
    "next_step",
    "plain",
    "refusal_message",
    "section",
    "status_label",
    "when",
    # modal
    "FIELD_BLOCKS",
    "PREREGISTER_CALLBACK",
    "confirmation_modal",
    "preregistration_modal",
    # customers
    "DEFAULT_FILTER",
    "DELETABLE",
    "FILTERS",
    "LIST_DELETE_ACTION",
    "LIST_DELETE_SELECTED_ACTION",
    "LIST_PAGE_ACTION",
    "LIST_SELECT_ACTION",
    "LIST_SELECT_BLOCK",
    "LIST_TOGGLE_ACTION",
    "PAGE_SIZE",
    "SEND_INVITATION_ACTION",
    "check_message",
    "customer_list",
    "delete_message",
    "delete_results",
    "list_state",
    "mask_email",
    "mask_mobile",
    # review
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "REJECT_CALLBACK",
    "reject_modal",
    "review_decided_message",
    "review_outcome_dm",
    "review_request_message",
    # home
    "HOME_EXPIRING_LIMIT",
    "HOME_QUEUE_LIMIT",
    "QUEUE_HEADER_BLOCK",
    "home_view",
    # onboarding
    "EVERYONE",
    "LINK_APPROVE_ACTION",
    "LINK_CALLBACK",
    "LINK_FIELDS",
    "LINK_OPEN_ACTION",
    "LINK_PICK_ACTION",
    "LINK_REJECT_ACTION",
    "LINK_REJECT_CALLBACK",
    "PICKED",
    "POLICY_MODE_BLOCK",
    "POLICY_PICKED_BLOCK",
    "POLICY_SAVE_ACTION",
    "link_decided_message",
    "link_modal",
    "link_outcome_dm",
    "link_reject_modal",
    "link_request_message",
    "link_sent_modal",
    "notice_modal",
    "onboarding_blocks",
    "policy_saved_line",
    # help
    "COMMANDS",
    "FLOW_STEPS",
    "RULES_IN_BRIEF",
    "flow_message",
    "help_message",
]
