"""Consent at the row level: copy a CSV dataset without the rows of subjects who withdrew."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from neuroledger.errors import (
    ConsentError,
)

__all__ = ["_header_name", "_subject_key", "filter_consent"]


def _subject_key(cell: str) -> str:
    """A subject cell as the lowercase address consent is recorded under."""
    subject = cell.strip().strip("\ufeff").lower()
    if subject.startswith("did:ethr:"):
        subject = subject.rsplit(":", 1)[-1]
    return subject


def _header_name(cell: str) -> str:
    return cell.strip().strip("\ufeff").strip('"').strip().lower()


def filter_consent(src: Path, dst: Path, withdrawn: set[str], *,
                   per_subject: bool = True) -> tuple[int, int]:  # fmt: skip
    """Copy CSV ``src`` to ``dst`` without rows whose ``subject`` withdrew; return (kept, excluded).

    The file is decoded as UTF-8 with or without a byte-order mark (as Excel writes
    it); the header is matched without case, spaces or quotes, and the delimiter
    (comma, semicolon, tab or bar) is read from the header line. A row with an empty
    subject is excluded: whose it is cannot be known. A file whose subjects cannot
    be identified (not UTF-8, not CSV, no ``subject`` column) raises
    :class:`ConsentError` unless ``per_subject`` is False (the owner marked the
    dataset as having no per-subject rows), in which case it is copied whole and
    (-1, 0) returned.
    """
    if not per_subject:
        shutil.copyfile(src, dst)
        return -1, 0
    fix = (
        "give it a `subject` column naming each row's data subject (address or did:ethr), "
        "or, if it has no per-subject rows, encrypt it with `neuroledger data encrypt "
        "--no-subjects`"
    )
    try:
        with open(src, newline="", encoding="utf-8-sig", errors="strict") as f:
            first = f.readline()
            delimiter = max(",;\t|", key=first.count)
            header = next(csv.reader([first], delimiter=delimiter), [])
            names = [_header_name(h) for h in header]
            if "subject" not in names:
                raise ConsentError(
                    "the dataset has no `subject` column, so withdrawn consent cannot be "
                    f"honoured and it is not given to jobs; {fix}"
                )
            column = names.index("subject")
            reader = csv.reader(f, delimiter=delimiter)
            kept = excluded = 0
            with open(dst, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out, delimiter=delimiter)
                writer.writerow(header)
                for row in reader:
                    if not row:
                        continue
                    subject = _subject_key(row[column]) if column < len(row) else ""
                    if not subject or subject in withdrawn:
                        excluded += 1
                        continue
                    writer.writerow(row)
                    kept += 1
    except UnicodeDecodeError:
        raise ConsentError(
            f"the dataset is not UTF-8 text, so its subjects cannot be read; {fix}"
        ) from None
    except csv.Error:
        raise ConsentError(f"the dataset is not readable CSV; {fix}") from None
    return kept, excluded
