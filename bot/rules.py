"""The source rules as data and pure functions (R2's causes, R4's cap, R5's validity)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from bot.errors import Refused
from bot.i18n import N_, _
from store.models import DirectoryAccount

VALIDITY = timedelta(days=15)  # R5
QUOTA_LIMIT = 100  # R4
REVIEW_WORKING_DAYS = 2  # R3
ASSOCIATION_TYPE = "reseller"  # R7
DELETABLE_STATUSES = ("preregistered", "rejected", "expired")  # R9


@dataclass(frozen=True)
class RuleSettings:
    validity: timedelta = VALIDITY
    quota_limit: int = QUOTA_LIMIT
    review_working_days: int = REVIEW_WORKING_DAYS
    holidays: frozenset[date] = frozenset()


STATUS_WORDS = {
    "under_review": N_("Under review"),
    "action_required": N_("Action required"),
    "preregistered": N_("Preregistered"),
    "associated": N_("Associated"),
    "rejected": N_("Rejected"),
    "expired": N_("Expired"),
    "deleted": N_("Deleted"),
}


def status_word(status: str) -> str:
    """A status as people say it, lower case, in the reader's language ("under review")."""
    word = STATUS_WORDS.get(status)
    return _(word).lower() if word else status.replace("_", " ")


# Every fixed refusal: code -> (cause in plain words, rule). R2's seven are worded as the
# source states them.
CAUSES: dict[str, tuple[str, str | None]] = {
    "china_mainland": (N_("The customer is registered on the China-mainland website."), "R2"),
    "associated_with_another_partner": (
        N_("The customer is associated with another partner."),
        "R2",
    ),
    "preregistered_by_another_partner": (
        N_(
            "The customer is preregistered by another partner (the preregistration is still valid)."
        ),
        "R2",
    ),
    "consumer_cloud_user": (N_("The customer is a consumer-cloud user."), "R2"),
    "signed_contract": (N_("The customer has signed contracts with the vendor."), "R2"),
    "cash_expenditure": (
        N_(
            "The customer has cash-expenditure records and was not preregistered by the vendor's "
            "direct sales team."
        ),
        "R2",
    ),
    "enterprise_master": (
        N_("The customer is associated with an enterprise master in the unified accounting model."),
        "R2",
    ),
    "already_associated": (N_("The customer is already associated with your company."), "R2"),
    "not_a_member": (
        N_(
            "You are not set up as a member of a partner yet. "
            "Ask your ecosystem manager to add you."
        ),
        None,
    ),
    "workspace_not_linked": (
        N_(
            "This Slack workspace is not linked to a partner yet. Your Slack admin can ask for the "
            "link on the app's Home tab; an ecosystem manager then approves it."
        ),
        None,
    ),
    "not_picked": (
        N_(
            "Your company has not added you to the people who may preregister customers. Ask your "
            "Slack admin (on the app's Home tab) or your ecosystem manager."
        ),
        None,
    ),
    "partner_inactive": (
        N_(
            "Your company has been taken out of the partner program, so it cannot preregister "
            "customers now. Ask your ecosystem manager if you think this is a mistake."
        ),
        None,
    ),
    "no_reserved_contact": (
        N_(
            "Your company has no reserved contact email or mobile number yet. One is needed "
            "before you can preregister customers. Ask your ecosystem manager to add one."
        ),
        "R1",
    ),
}


def refusal(code: str) -> Refused:
    message, rule = CAUSES[code]
    return Refused(code, _(message), rule)


def directory_refusal(account: DirectoryAccount, partner_name: str) -> Refused | None:
    """The first R2 cause that the directory record shows, or None."""
    if account.china_mainland:
        return refusal("china_mainland")
    if account.associated_partner and account.associated_partner != partner_name:
        return refusal("associated_with_another_partner")
    if account.associated_partner == partner_name:
        return refusal("already_associated")
    if account.consumer:
        return refusal("consumer_cloud_user")
    if account.contract:
        return refusal("signed_contract")
    if account.cash_spend and not account.direct_sales_preregistered:
        return refusal("cash_expenditure")
    if account.enterprise_master:
        return refusal("enterprise_master")
    return None


def live_claim_refusal(status: str, same_partner: bool) -> Refused:
    """A live preregistration already holds the customer (R2, R5)."""
    if same_partner:
        words = {
            "under_review": _("The customer is already under review for your company."),
            "preregistered": _("The customer is already preregistered by your company."),
            "associated": _("The customer is already associated with your company."),
        }[status]
        return Refused(f"already_{status}", words, "R5")
    if status == "associated":
        return refusal("associated_with_another_partner")
    return refusal("preregistered_by_another_partner")


def quota_refusal(limit: int) -> Refused:
    return Refused(
        "quota_full",
        _(
            "Your company already has {limit} customers under review or preregistered. That "
            "is the most allowed at once. Delete a preregistration you no longer need, or wait "
            "for one to expire."
        ).format(limit=limit),
        "R4",
    )
