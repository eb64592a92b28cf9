"""SAR/STR export in goAML's XML layout (the UNODC schema most FIUs accept), with xml.etree.

Pure: a `ReportContent` in, bytes out, no clock and no database, so an export can be repeated
for an auditor byte for byte. Every text goes through ElementTree, which escapes markup; what
ElementTree cannot make safe (characters XML 1.0 forbids, a carriage return that a parser turns
into a newline) `xml_text` replaces first, so any narrative parses back to `xml_text(narrative)`.

Only the elements we can fill from a case are written: a subset of goAML's report, in its order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from compliance.cases._model import ReportCode

# goAML's code for an electronic submission (the other, "M", is a manual one on paper).
SUBMISSION_CODE_ELECTRONIC = "E"
# Characters XML 1.0 does not allow in a document, even escaped (C0 controls but tab, LF, CR;
# lone surrogates; U+FFFE and U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REPLACEMENT = "\ufffd"


def xml_text(text: str) -> str:
    """`text` as it reads back from our XML: line ends as LF, forbidden characters as U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_XML.sub(_REPLACEMENT, text)


@dataclass(frozen=True, slots=True)
class ReportingEntity:
    """The exchange as the FIU knows it, and who files for it.

    Attributes
    ----------
    rentity_id : str
        The reporting entity's id at the FIU (issued on registration with goAML).
    person_first_name, person_last_name, person_email : str
        The reporting person (the MLRO), written in ``reporting_person``.
    """

    rentity_id: str
    person_first_name: str
    person_last_name: str
    person_email: str


@dataclass(frozen=True, slots=True)
class ReportTransaction:
    """One transaction of a report, built from an alert's evidence.

    Attributes
    ----------
    transactionnumber : str
        The event's stable id (the evidence ref).
    internal_ref_number : str
        The alert that cited it.
    description : str
        What moved, in words.
    date_transaction : datetime
        The event time.
    value_usd : Decimal or None
        Its USD valuation, when the monitoring rule had a price.
    account_id : int
        Our customer's account.
    counterparty : str
        The other side: an address, an account, or empty.
    """

    transactionnumber: str
    internal_ref_number: str
    description: str
    date_transaction: datetime
    value_usd: Decimal | None
    account_id: int
    counterparty: str


@dataclass(frozen=True, slots=True)
class ReportContent:
    """Everything one goAML report says."""

    entity: ReportingEntity
    entity_reference: str  # our reference: case and draft
    report_code: ReportCode
    submission_date: date
    currency_code_local: str
    reason: str  # the narrative
    action: str  # what the exchange did about it
    transactions: tuple[ReportTransaction, ...]
    indicators: tuple[str, ...]  # rule ids that fired, as report indicators


def _add(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = xml_text(text)
    return child


def _datetime(value: datetime) -> str:
    # goAML's xs:dateTime without a zone: our times are UTC, written as such.
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def export_report(content: ReportContent) -> bytes:
    """The report as goAML-style XML, UTF-8 with a declaration.

    Parameters
    ----------
    content : ReportContent

    Returns
    -------
    bytes
        A ``<report>`` document. Amounts are the rule's USD valuation: written as
        ``amount_local`` when the local currency is USD, else as ``foreign_currency`` (USD)
        until a price source in the local currency exists.
    """
    report = ET.Element("report")
    _add(report, "rentity_id", content.entity.rentity_id)
    _add(report, "submission_code", SUBMISSION_CODE_ELECTRONIC)
    _add(report, "report_code", content.report_code.value)
    _add(report, "entity_reference", content.entity_reference)
    _add(report, "submission_date", content.submission_date.isoformat() + "T00:00:00")
    _add(report, "currency_code_local", content.currency_code_local)
    person = ET.SubElement(report, "reporting_person")
    _add(person, "first_name", content.entity.person_first_name)
    _add(person, "last_name", content.entity.person_last_name)
    _add(person, "email", content.entity.person_email)
    _add(report, "reason", content.reason)
    _add(report, "action", content.action)
    for tx in content.transactions:
        element = ET.SubElement(report, "transaction")
        _add(element, "transactionnumber", tx.transactionnumber)
        _add(element, "internal_ref_number", tx.internal_ref_number)
        _add(element, "transaction_description", tx.description)
        _add(element, "date_transaction", _datetime(tx.date_transaction))
        if tx.value_usd is not None:
            if content.currency_code_local == "USD":
                _add(element, "amount_local", str(tx.value_usd))
            else:
                foreign = ET.SubElement(element, "foreign_currency")
                _add(foreign, "foreign_currency_code", "USD")
                _add(foreign, "foreign_amount", str(tx.value_usd))
        client = ET.SubElement(element, "t_from_my_client")
        account = ET.SubElement(client, "from_account")
        _add(account, "account", str(tx.account_id))
        if tx.counterparty:
            to = ET.SubElement(element, "t_to")
            to_account = ET.SubElement(to, "to_account")
            _add(to_account, "account", tx.counterparty)
    indicators = ET.SubElement(report, "report_indicators")
    for indicator in content.indicators:
        _add(indicators, "indicator", indicator)
    ET.indent(report)
    return ET.tostring(report, encoding="utf-8", xml_declaration=True)
