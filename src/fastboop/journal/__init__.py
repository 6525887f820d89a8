"""The session journal: every event and effect, in order, crash-tolerant and compact."""

from fastboop.journal.errors import JournalFormatError
from fastboop.journal.reader import (
    Journal,
    JournalReader,
    RecordSource,
    open_journal,
    read_journal,
)
from fastboop.journal.records import Fault, JournalHeader, Outcome, Record, Wire
from fastboop.journal.schema import SchemaMismatch, register_upcaster
from fastboop.journal.writer import JournalWriteError, JournalWriter, make_header

__all__ = [
    "Fault",
    "Journal",
    "JournalFormatError",
    "JournalHeader",
    "JournalReader",
    "JournalWriteError",
    "JournalWriter",
    "Outcome",
    "Record",
    "RecordSource",
    "SchemaMismatch",
    "Wire",
    "make_header",
    "open_journal",
    "read_journal",
    "register_upcaster",
]
