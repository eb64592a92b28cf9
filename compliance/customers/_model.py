"""Customers, KYC status and consents: the data, the KYC transition table, the outcome codes.

Pure: nothing here does I/O. `compliance.customers._store` keeps these in PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal

import msgspec

from compliance.customers._limits import (
    expected_monthly_volume_usd_minor_max,
    expected_products_max,
    name_chars_max,
    reason_chars_max,
)

# ISO 3166-1 alpha-2, upper case, as in `compliance.customer_state.Jurisdiction`.
Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=name_chars_max)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=reason_chars_max)]
VolumeUsdMinor = Annotated[int, msgspec.Meta(ge=0, le=expected_monthly_volume_usd_minor_max)]


class PersonType(enum.StrEnum):
    """A natural person (an individual) or a legal person (a company, a foundation...)."""

    natural = "natural"
    legal = "legal"


class Product(enum.StrEnum):
    """What a customer expects to use; the risk configuration scores each one."""

    spot_trading = "spot_trading"
    crypto_deposit = "crypto_deposit"
    crypto_withdrawal = "crypto_withdrawal"
    fiat_deposit = "fiat_deposit"
    fiat_withdrawal = "fiat_withdrawal"
    otc = "otc"


Products = Annotated[list[Product], msgspec.Meta(min_length=1, max_length=expected_products_max)]


class KycStatus(enum.StrEnum):
    """Where a customer's identity verification stands."""

    pending = "pending"
    verified = "verified"
    rejected = "rejected"
    expired = "expired"


# The KYC lifecycle, as a table (not nested ifs): from each status, the statuses it may go to.
# verified -> expired when re-verification falls due; expired -> pending when it starts;
# rejected -> pending when the customer resubmits.
KYC_TRANSITIONS: dict[KycStatus, frozenset[KycStatus]] = {
    KycStatus.pending: frozenset({KycStatus.verified, KycStatus.rejected}),
    KycStatus.verified: frozenset({KycStatus.expired}),
    KycStatus.expired: frozenset({KycStatus.pending}),
    KycStatus.rejected: frozenset({KycStatus.pending}),
}


def kyc_transition_allowed(current: KycStatus, target: KycStatus) -> bool:
    """Whether the KYC table lets ``current`` go to ``target``. O(1)."""
    return target in KYC_TRANSITIONS[current]


class CustomerReason(enum.IntEnum):
    """Why a customer operation was refused; stable numbers, never renumbered (retire instead).

    Compliance codes are 2xxx (design.md): 21xx are compliance.customers', 22xx its webhook's
    (`WebhookReason`); 20xx are the gateway's pre-trade checks.
    """

    customer_must_exist = 2101
    kyc_transition_must_be_allowed = 2102
    customer_must_be_valid = 2103
    account_must_not_belong_to_another_customer = 2104
    consent_must_be_valid = 2105
    reason_must_be_given = 2106
    actor_must_be_named = 2107
    requirement_must_be_open = 2108


class CustomerError(Exception):
    """A refused customer operation: nothing was changed.

    Attributes
    ----------
    reason : CustomerReason
        The stable outcome code; switch on this, not on the message.
    """

    def __init__(self, reason: CustomerReason, message: str) -> None:
        super().__init__(f"{reason.name}: {message}")
        self.reason = reason


class NewCustomer(msgspec.Struct, frozen=True, kw_only=True):
    """What onboarding knows about a customer before any check.

    Attributes
    ----------
    person_type : PersonType
        Natural or legal person.
    given_names, family_name : str or None
        A natural person's names (both required for one, absent for a legal person).
    legal_name : str or None
        A legal person's registered name (required for one, absent for a natural person).
    born_or_incorporated_on : datetime.date
        Date of birth, or of incorporation.
    residence_country : str
        ISO 3166-1 alpha-2 of residence (registered office for a legal person); this is the
        jurisdiction the gateways see.
    nationality_country : str
        Nationality, or country of incorporation.
    expected_products : list of Product
        What the customer said they will use (at least one).
    expected_monthly_volume_usd : int
        Expected monthly volume in USD minor units (cents).
    pep : bool
        A politically exposed person (or, for a legal person, one among its controllers).
    account_id : int or None
        The linked trading account, if one exists yet.
    """

    person_type: PersonType
    given_names: Name | None = None
    family_name: Name | None = None
    legal_name: Name | None = None
    born_or_incorporated_on: dt.date
    residence_country: Country
    nationality_country: Country
    expected_products: Products
    expected_monthly_volume_usd_minor: VolumeUsdMinor
    pep: bool = False
    account_id: Annotated[int, msgspec.Meta(ge=1)] | None = None

    @property
    def display_name(self) -> str:
        """The name a reviewer (and the screening) reads: legal name, or given + family."""
        if self.legal_name is not None:
            return self.legal_name
        return f"{self.given_names} {self.family_name}"


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    """A stored customer: the onboarding facts plus everything compliance has decided since.

    Attributes
    ----------
    customer_id : int
        Our id; the KYC vendor knows it as ``externalUserId`` (its decimal text).
    profile : NewCustomer
        Identity, residence, nationality, expected products and volume, PEP flag, account.
    kyc_status : KycStatus
        Where verification stands.
    frozen, sanctioned : bool
        Set by monitoring / screening (with a reason) and by officers.
    frozen_reason, sanctioned_reason : str or None
        Why the flag was last set (kept when cleared, for the record).
    risk_level : {"low", "medium", "high"} or None
        From the latest assessment; None before the first one (published as "high").
    next_review_on : datetime.date or None
        When the latest assessment says the customer must be reviewed again.
    applicant_id : str or None
        The KYC vendor's applicant id, learnt from its first webhook.
    """

    customer_id: int
    profile: NewCustomer
    kyc_status: KycStatus
    frozen: bool
    frozen_reason: str | None
    sanctioned: bool
    sanctioned_reason: str | None
    risk_level: Literal["low", "medium", "high"] | None
    next_review_on: dt.date | None
    applicant_id: str | None


class ConsentPurpose(enum.StrEnum):
    """What a customer consents to (GDPR art. 6/7: one record per purpose)."""

    terms_of_service = "terms_of_service"
    privacy_notice = "privacy_notice"
    kyc_data_processing = "kyc_data_processing"
    marketing = "marketing"


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    """One consent event: granted or withdrawn, for one purpose, against one text version.

    Attributes
    ----------
    purpose : ConsentPurpose
        What the consent is for.
    granted : bool
        True when granted, False when withdrawn.
    text_version : str
        Which version of the consent text the customer saw (``"tos-2026-09"``).
    at : datetime.datetime
        When, timezone-aware.
    """

    purpose: ConsentPurpose
    granted: bool
    text_version: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    at: dt.datetime

def _cross_check(customer: NewCustomer) -> None:
    # Rules across fields; in `checked`, not __post_init__, so that building a NewCustomer
    # never raises and every refusal is the store's CustomerError.
    natural = customer.person_type is PersonType.natural
    has_person_names = customer.given_names is not None and customer.family_name is not None
    if natural and (not has_person_names or customer.legal_name is not None):
        raise ValueError(
            "a natural person needs given_names and family_name, and no legal_name"
        )
    has_any_person_name = customer.given_names is not None or customer.family_name is not None
    if not natural and (customer.legal_name is None or has_any_person_name):
        raise ValueError(
            "a legal person needs legal_name, and no given_names or family_name"
        )
    if len(set(customer.expected_products)) != len(customer.expected_products):
        raise ValueError("expected_products lists a product twice")


def checked(customer: NewCustomer) -> NewCustomer:
    """``customer`` with every constraint enforced (msgspec checks them only when decoding).

    Raises
    ------
    CustomerError
        ``customer_must_be_valid``, naming the first field that fails.
    """
    try:
        valid = msgspec.convert(msgspec.to_builtins(customer), NewCustomer)
        _cross_check(valid)
        return valid
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        raise CustomerError(CustomerReason.customer_must_be_valid, str(exc)) from None
