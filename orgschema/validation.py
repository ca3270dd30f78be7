"""The one validation of what people type: e-mails, names, slugs and passwords.

Every door that writes a user or an organization uses these functions: the
first-admin bootstrap (CLI, HTTP and Python), seeding, the domain helpers and
the studio's hooks. A value refused here is refused everywhere, with the same
message, as :class:`~orgschema.errors.InvalidInputError` naming the field.

E-mails are checked by `email-validator <https://pypi.org/project/email-validator/>`_
(syntax only: no DNS lookup), then against what Better-auth 1.7 accepts when
a user signs in (zod's ``z.email()``): an address stored here is one that user
can sign in with. They are stored trimmed and lower-cased, as Better-auth
stores them.
"""

from __future__ import annotations

import string
import unicodedata

from orgschema.errors import InvalidInputError

#: Longest e-mail looked at (64 before the @, 255 after, as RFC 5321 allows);
#: email-validator then holds addresses to its own limit of 254.
MAX_EMAIL_LENGTH = 320

#: Longest display name of a user or an organization.
MAX_NAME_LENGTH = 200

#: Longest slug; a slug made from a name of :data:`MAX_NAME_LENGTH` fits.
MAX_SLUG_LENGTH = 200

#: Better-auth's default ``minPasswordLength`` and ``maxPasswordLength``.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128

# What zod's z.email() (Better-auth's check at sign-in) allows before the @;
# email-validator allows more (RFC 5322 atext such as ! # $ %), which would
# store a user who can never sign in. Dots are email-validator's business.
_LOCAL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_'+-.")
_SLUG_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-")


def check_text(value: object, field: str, *, max_length: int | None = None) -> str:
    """``value`` if it is text PostgreSQL can store, of at most ``max_length`` characters.

    :param value: What was given (any type: it may come from JSON).
    :param field: The field's name, for the message and the error's ``field``.
    :param max_length: The most characters allowed; ``None`` for no limit.
    :returns: ``value``, unchanged.
    :raises InvalidInputError: not a string, too long, a NUL character or a
        lone surrogate (which JSON can carry but UTF-8 cannot).
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string", field=field)
    if max_length is not None and len(value) > max_length:
        raise InvalidInputError(
            f"{field} must be at most {max_length} characters long", field=field
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{field} is not valid Unicode text", field=field) from exc
    if "\x00" in value:
        raise InvalidInputError(f"{field} must not contain NUL characters", field=field)
    return value


def normalise_email(value: object, field: str = "email") -> str:
    """``value`` as Better-auth stores an e-mail: trimmed, lower-case, and valid.

    :param value: What was given (any type: it may come from JSON).
    :param field: The field's name, for the message and the error's ``field``.
    :returns: The e-mail as it is stored.
    :raises InvalidInputError: not a string, or not an address (the message
        says why, e.g. "An email address must have an @-sign."), or one that
        Better-auth would refuse at sign-in.
    """
    # Imported on first use: building its tables costs ~25 ms, which a service
    # that only imports the tables should not pay.
    from email_validator import EmailNotValidError, validate_email

    cleaned = check_text(value, field).strip()
    if len(cleaned) > MAX_EMAIL_LENGTH:
        raise InvalidInputError(
            f"{field} must be at most {MAX_EMAIL_LENGTH} characters long", field=field
        )
    if not cleaned.isascii():
        raise _not_an_email(value, field, "use only ASCII letters, digits and punctuation")
    try:
        checked = validate_email(
            cleaned,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
            # Also RFC 5321's length limits (64 characters before the @).
            strict=True,
        )
    except EmailNotValidError as exc:
        raise _not_an_email(value, field, str(exc)) from exc
    local, domain = checked.local_part, checked.ascii_domain
    if not set(local) <= _LOCAL_CHARACTERS or local.endswith("'"):
        raise _not_an_email(
            value,
            field,
            "Better-auth accepts only letters, digits and . _ ' + - before the @-sign "
            "(and no ' at its end)",
        )
    top_level = domain.rpartition(".")[2]
    if len(top_level) < 2 or not top_level.isalpha():
        raise _not_an_email(
            value, field, "Better-auth accepts only a top-level domain of two or more letters"
        )
    return f"{local}@{domain}".lower()


def _not_an_email(value: object, field: str, reason: str) -> InvalidInputError:
    shown = value if len(str(value)) <= 80 else f"{str(value)[:80]}..."
    return InvalidInputError(
        f"{shown!r} is not a valid e-mail address: {reason} (expected name@example.com)",
        field=field,
    )


def normalise_name(value: object, field: str = "name") -> str:
    """``value`` as a display name is stored: trimmed, not empty, no control characters.

    Used for users' and organizations' names alike.

    :param value: What was given (any type: it may come from JSON).
    :param field: The field's name, for the message and the error's ``field``.
    :returns: The name as it is stored.
    :raises InvalidInputError: not a string, blank, longer than
        :data:`MAX_NAME_LENGTH` characters, or holding a control character
        (a tab, a newline...).
    """
    cleaned = check_text(value, field).strip()
    if not cleaned:
        raise InvalidInputError(f"{field} must not be empty", field=field)
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field} must be at most {MAX_NAME_LENGTH} characters long", field=field
        )
    if any(unicodedata.category(character) == "Cc" for character in cleaned):
        raise InvalidInputError(
            f"{field} must not contain control characters such as tabs or newlines", field=field
        )
    return cleaned


def check_slug(value: object, field: str = "slug") -> str:
    """``value`` if it is a slug: lower-case letters and digits, with single hyphens between them.

    The database's ``organization_slug_check`` says the same; checking here
    gives the reason before anything is sent.

    :param value: What was given (any type: it may come from JSON).
    :param field: The field's name, for the message and the error's ``field``.
    :returns: ``value``, unchanged.
    :raises InvalidInputError: not a slug, or longer than :data:`MAX_SLUG_LENGTH`.
    """
    slug = check_text(value, field, max_length=MAX_SLUG_LENGTH)
    words = slug.split("-")
    if not all(words) or not set(slug) <= _SLUG_CHARACTERS:
        raise InvalidInputError(
            f"{slug!r} is not a slug: use lower-case letters and digits with single hyphens "
            "between them, such as 'north-school-2'",
            field=field,
        )
    return slug


def check_password(value: object, field: str = "password") -> str:
    """``value`` if Better-auth's default length rules accept it as a password.

    :param value: What was given (any type: it may come from JSON).
    :param field: The field's name, for the message and the error's ``field``.
    :returns: ``value``, unchanged.
    :raises InvalidInputError: not a string, or shorter than
        :data:`MIN_PASSWORD_LENGTH` or longer than :data:`MAX_PASSWORD_LENGTH`
        characters.
    """
    # A Python character is one or two UTF-16 code units, so this bound only
    # refuses early what the count below would refuse too.
    password = check_text(value, field, max_length=MAX_PASSWORD_LENGTH)
    # Better-auth measures JavaScript string length (UTF-16 code units), so an
    # emoji counts twice there; measure the same way to agree on the limits.
    length = len(password.encode("utf-16-le")) // 2
    if length < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"{field} must be at least {MIN_PASSWORD_LENGTH} characters long", field=field
        )
    if length > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"{field} must be at most {MAX_PASSWORD_LENGTH} characters long", field=field
        )
    return password
