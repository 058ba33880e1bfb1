"""Field validation for everything a person types: email (R6), mobile, name, country."""

from __future__ import annotations

import re
import string
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.errors import InvalidInput
from bot.i18n import N_, _

MAX_NAME_LENGTH = 100
# R6: only letters, digits, `_`, `-`, `.` and the `@`.
_EMAIL_CHARS = re.compile(r"^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+$")
_MOBILE_HINT = N_("Use international format, e.g. +49 1512 3456789.")
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_error(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return _("Enter the customer's email address.")
    if len(value) > 254:
        return _("The email address is too long (at most 254 characters).")
    if value.count("@") != 1:
        return _("An email address needs exactly one @, as in name@company.com.")
    if not _EMAIL_CHARS.match(value):
        return _(
            "The email address may contain only plain letters (no accents), digits, "
            "`_`, `-` and `.`, besides the @."
        )
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return _("The email address is not valid: {reason}").format(reason=exc)
    return None


def normalise_email(raw: str) -> str:
    """The address as compared and stored (`email_norm`): trimmed, ASCII letters lowercased.
    Only A-Z are folded: `str.lower()` would turn look-alikes into the registered address
    (KELVIN SIGN to `k`). Any other character is kept, so an address with one never equals a
    registered address, which R6 keeps ASCII."""
    return raw.strip().translate(_ASCII_LOWER)


def email_domain(email_norm: str) -> str:
    """The company part of a normalised address (after the last @), for similar requests."""
    return email_norm.rpartition("@")[2]


def is_rule_email(raw: str) -> bool:
    """Whether the trimmed text has only R6's ASCII characters (letters, digits, `_-.@`)."""
    return bool(_EMAIL_CHARS.fullmatch(raw.strip()))


def same_email(given: str, registered: str) -> bool:
    """R6's comparison: the same address up to ASCII case. Non-ASCII is refused before any
    case is folded, so no Unicode look-alike of the registered address matches it."""
    given, registered = given.strip(), registered.strip()
    if not (given.isascii() and registered.isascii()):
        return False
    return normalise_email(given) == normalise_email(registered)


def clean_email(raw: str, field: str = "email") -> str:
    error = email_error(raw)
    if error:
        raise InvalidInput({field: error})
    return raw.strip()


def mobile_error(raw: str, default_region: str | None) -> str | None:
    value = raw.strip()
    if not value:
        return _("Enter the customer's mobile number.")
    if len(value) > 32:
        return _("The mobile number is too long.")
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return _("The mobile number is not a phone number.") + " " + _(_MOBILE_HINT)
    if not phonenumbers.is_valid_number(number):
        return _("The mobile number is not a valid number.") + " " + _(_MOBILE_HINT)
    return None


def clean_mobile(raw: str, default_region: str | None, field: str = "mobile") -> str:
    """Returns the number in E.164 form."""
    error = mobile_error(raw, default_region)
    if error:
        raise InvalidInput({field: error})
    number = phonenumbers.parse(raw.strip(), default_region)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mobile_region(e164: str) -> str | None:
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))


def has_control_chars(text: str) -> bool:
    """Control characters (NUL among them, which PostgreSQL text cannot store) or invisible
    format characters such as bidi overrides."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def printable(text: str, limit: int = 200) -> str:
    """`text` with control characters replaced, cut to `limit`: safe to store and to echo."""
    return "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text[:limit])


def name_error(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return _("Enter the customer's full name.")
    if len(value) > MAX_NAME_LENGTH:
        return _("The full name is too long (at most {limit} characters).").format(
            limit=MAX_NAME_LENGTH
        )
    if has_control_chars(value):
        return _("The full name contains control or invisible characters.")
    return None


def clean_name(raw: str, field: str = "full_name") -> str:
    error = name_error(raw)
    if error:
        raise InvalidInput({field: error})
    return " ".join(raw.split())


def clean_country(raw: str, field: str = "country") -> str:
    value = raw.strip().upper()
    if value not in COUNTRIES:
        raise InvalidInput(
            {
                field: _(
                    '"{code}" is not a country code. Use the two letters of ISO 3166, e.g. DE.'
                ).format(code=raw.strip())
            }
        )
    return value
