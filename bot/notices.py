"""Kinds of notice the service records in the outbox. Payloads hold ids and facts only;
the delivery side renders them (Slack Block Kit, email) at send time."""

REVIEW_REQUEST = "review_request"  # {preregistration_id}: post to the manager channel
DECISION_CLICK = "decision_click"  # {preregistration_id, manager, response_url}: decide it
REVIEW_DECIDED = "review_decided"  # {preregistration_id}: update that post, DM the submitter
INVITATION_EMAIL = "invitation_email"  # {preregistration_id}: email the customer (R8 yes)
INVITATION_SHARE = "invitation_share"  # {preregistration_id}: link + QR to the partner (R8 no)
ASSOCIATED = "associated"  # {preregistration_id}: tell the partner (R12)
EXPIRED = "expired"  # {preregistration_id}: notice channel or DM (R5)
EXPIRY_REMINDER = "expiry_reminder"  # {preregistration_id, days_before}
REVIEW_DUE_SOON = "review_due_soon"  # {preregistration_id}
REVIEW_OVERDUE = "review_overdue"  # {preregistration_id}
DIGEST = "digest"  # {partner_id, date}
LINK_REQUEST = "link_request"  # {link_request_id}: post to the manager channel
LINK_DECIDED = "link_decided"  # {link_request_id, reason}: update that post, DM the requester
INFO_REQUESTED = "info_requested"  # {preregistration_id}: DM the submitter the question
INFO_ANSWERED = "info_answered"  # {preregistration_id}: review post back, answer threaded
INFO_REMINDER = "info_reminder"  # {preregistration_id}: the day before an unanswered one expires
INFO_EXPIRED = "info_expired"  # {preregistration_id}: unanswered for 5 working days
REVIEW_REFRESH = "review_refresh"  # {preregistration_id}: re-render the review post (reviewer)
WEEKLY_REPORT = "weekly_report"  # {date, as_of}: report and chart to the manager channel


def review_decided_key(preregistration_id: int) -> str:
    """The dedupe key of a request's REVIEW_DECIDED notice (there is one decision per request)."""
    return f"{REVIEW_DECIDED}:{preregistration_id}"
