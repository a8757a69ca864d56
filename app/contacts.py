"""Import directory contacts from CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import DirectoryContact
from app.phone import to_e164

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("name", "phone")
OPTIONAL_COLUMNS = ("company", "email", "owner_email", "tier", "notes")
MAX_FIELD_LENGTH = 255


@dataclasses.dataclass
class ImportReport:
    """How many rows were added or updated, and why the others were rejected."""

    added: int = 0
    updated: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


class CsvFormatError(ValueError):
    """The file is not a CSV with the expected header."""


def import_contacts(session: Session, lines: Iterable[str], region: str) -> ImportReport:
    """Add or update contacts from CSV text with a header row.

    A row is keyed by its E.164 number and name: importing the same file twice
    updates rows instead of duplicating them. A bad row is reported with its line
    number and skipped; the good rows are still imported.
    """
    reader = csv.DictReader(lines)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise CsvFormatError(f"the header row has no {', '.join(missing)} column")
    reader.fieldnames = header

    report = ImportReport()
    for row in reader:
        line = reader.line_num
        values = {key: (value or "").strip() for key, value in row.items() if key}
        error = _row_error(values, region)
        if error:
            report.errors.append(f"line {line}: {error}")
            continue
        _upsert(session, values, region, report)

    session.commit()
    log.info("Contacts imported: %d added, %d updated, %d rejected", report.added, report.updated, len(report.errors))
    return report


def import_csv_text(session: Session, text: str, region: str) -> ImportReport:
    return import_contacts(session, io.StringIO(text), region)


def _row_error(values: dict[str, str], region: str) -> str | None:
    if not values.get("name"):
        return "missing name"
    if not values.get("phone"):
        return "missing phone"
    for column, value in values.items():
        if len(value) > MAX_FIELD_LENGTH and column != "notes":
            return f"{column} is longer than {MAX_FIELD_LENGTH} characters"
    if to_e164(values["phone"], region) is None:
        return f"phone {values['phone']!r} is not a valid number (default region {region})"
    email = values.get("email")
    if email and "@" not in email:
        return f"email {email!r} is not an e-mail address"
    return None


def _upsert(session: Session, values: dict[str, str], region: str, report: ImportReport) -> None:
    e164 = to_e164(values["phone"], region)
    contact = session.scalar(
        sa.select(DirectoryContact).where(
            DirectoryContact.phone_e164 == e164, DirectoryContact.name == values["name"]
        )
    )
    if contact is None:
        contact = DirectoryContact(name=values["name"], phone_e164=e164)
        session.add(contact)
        report.added += 1
    else:
        report.updated += 1

    contact.phone = values["phone"]
    for column in OPTIONAL_COLUMNS:
        setattr(contact, column, values.get(column) or None)
