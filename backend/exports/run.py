"""One export as a file, audit-logged per patient (NEN 7513), and the `pijnwacht export` command.

Formats: the long CSV (backend/exports/long.py, the replay input), the wide consult CSV
(wide.py), the cohort CSV and its summary (cohort.py) and the FHIR Bundle (fhir_export.py).
Reading happens in one snapshot on a reader; the audit rows go through the database's one
writer (backend/platform/storage.py) like every other write.
"""

from __future__ import annotations

import getpass
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

import msgspec

from backend.diary.questionnaires import Library, load_library
from backend.exports.cohort import (
    DEFAULT_TIME_POINTS,
    TimePoint,
    cohort_patients,
    cohort_summary,
    cohort_time_points,
    iter_cohort,
    iter_cohort_summary,
)
from backend.exports.fhir_export import FhirOptions, iter_fhir
from backend.exports.files import write_export
from backend.exports.long import iter_long
from backend.exports.scope import ExportError, check_range, exported_patients, span
from backend.exports.wide import Dialect, iter_wide
from backend.patients.pathways import load_pathways
from backend.platform import audit
from backend.platform.settings import load_settings
from backend.platform.storage import Database, open_database

Format = Literal["long", "wide", "fhir", "cohort"]
FORMATS: tuple[Format, ...] = ("long", "wide", "fhir", "cohort")


class Actor(msgspec.Struct, frozen=True):
    """Who exports, for the audit log (NEN 7513)."""

    user_id: int | None
    user_email: str | None
    role: str
    source: str


def audit_export(
    conn: sqlite3.Connection,
    actor: Actor,
    patient_ids: Iterable[str],
    fmt: str,
    detail: str = "",
) -> int:
    """One audit-log row per exported patient (NEN 7513), inside the caller's write
    transaction (the writer's: `db.write_sync(lambda conn: audit_export(conn, ...))`)."""
    obj = f"export {fmt}" + (f" {detail}" if detail else "")
    n = 0
    for pid in patient_ids:
        audit.record(
            conn,
            user_id=actor.user_id,
            user_email=actor.user_email,
            role=actor.role,
            patient_id=pid,
            action="export",
            object=obj,
            source=actor.source,
        )
        n += 1
    return n


class ExportDone(msgspec.Struct):
    """What an export wrote: the files and how many patients are in them."""

    paths: list[str]
    patients: int


def summary_path(path: str | Path) -> Path:
    """Where the cohort summary goes beside the cohort file: `<name>-summary.csv`."""
    path = Path(path)
    return path.with_name(f"{path.stem}-summary{path.suffix or '.csv'}")


def export_to_file(
    db: Database,
    path: str | Path,
    *,
    fmt: Format,
    actor: Actor,
    library: Library | None = None,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    dialect: Dialect = "standard",
    pathway_id: str | None = None,
    time_points: Sequence[TimePoint] = DEFAULT_TIME_POINTS,
    today: date | None = None,
    fhir: FhirOptions | None = None,
) -> ExportDone:
    """Make one export as a file (atomically) and audit-log it per patient once it is whole.

    `fhir`: the FhirOptions of a FHIR export (bundle type, canonical base, identifier system).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} ({', '.join(FORMATS)})")
    if fmt != "long" and library is None:
        raise ExportError(f"the {fmt} export needs the questionnaire library")
    date_from, date_to = check_range(date_from, date_to)
    conn = db.reader
    paths = [str(path)]
    detail = span(date_from, date_to)
    chunks: Iterator[str]
    if fmt == "cohort":
        ids = [pid for pid, _anchor in cohort_patients(conn, pathway_id)]
        assert library is not None and pathway_id is not None
        write_export(path, iter_cohort(conn, library, pathway_id, time_points=time_points, today=today))
        summary = cohort_summary(conn, pathway_id, time_points=time_points, today=today)
        second = summary_path(path)
        write_export(second, iter_cohort_summary(summary))
        paths.append(str(second))
        detail = f"pathway {pathway_id}"
    else:
        scope: dict[str, Any] = {"patient_id": patient_id, "date_from": date_from, "date_to": date_to}
        if fmt == "long":
            chunks = iter_long(conn, **scope)
        elif fmt == "wide":
            assert library is not None
            chunks = iter_wide(conn, library, **scope, dialect=dialect)
            detail += f" dialect {dialect}"
        else:
            assert library is not None
            fhir = fhir or FhirOptions()
            chunks = iter_fhir(conn, library, **scope, options=fhir)
            detail += f" bundle {fhir.bundle}" + (" with names" if fhir.with_names else "")
        write_export(path, chunks)
        ids = exported_patients(conn, patient_id, date_from, date_to)
    db.write_sync(lambda w: audit_export(w, actor, ids, fmt, detail))
    return ExportDone(paths=paths, patients=len(ids))


def add_export_command(subparsers: Any) -> Any:
    """Add `export` to the `pijnwacht` command's argparse subparsers."""
    p = subparsers.add_parser(
        "export",
        help="export responses as CSV (long, wide, cohort) or FHIR",
        description="Export responses. Long CSV: the raw history (replay input). Wide: one row"
        " per patient per day for the consult. Cohort: PROMs per time point of a pathway (and a"
        " -summary file). FHIR: an R4 Bundle.",
    )
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--patient", help="one patient id (default: every patient)")
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first local date")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last local date")
    p.add_argument(
        "--dialect",
        choices=["standard", "nl"],
        default="standard",
        help="wide CSV: standard (comma) or nl (Dutch Excel: BOM, ';', decimal comma)",
    )
    p.add_argument("--pathway", help="cohort export: the pathway id")
    p.add_argument(
        "--bundle",
        choices=["collection", "transaction"],
        default="collection",
        help="FHIR: collection (a file to read) or transaction (conditional PUTs a FHIR server imports)",
    )
    p.add_argument(
        "--with-names",
        action="store_true",
        help="FHIR: put the patients' display names in Patient.name (default: pseudonymous)",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    p.set_defaults(func=export_command)
    return p


def export_command(args: Any, settings: Any = None) -> int:
    """Run `pijnwacht export`: 0 done, 2 a problem with the request (message on stderr)."""
    if args.format != "fhir" and (args.bundle != "collection" or args.with_names):
        print("pijnwacht export: --bundle and --with-names are for --format fhir", file=sys.stderr)
        return 2
    if settings is None:
        settings = load_settings(db=getattr(args, "db", None))
    db = open_database(settings.db)  # makes and migrates the file when absent (contract)
    try:
        library = load_library(settings.questionnaires_dir) if args.format != "long" else None
        points = DEFAULT_TIME_POINTS
        if args.format == "cohort" and args.pathway and library is not None:
            pathways = load_pathways(settings.questionnaires_dir, library)
            points = cohort_time_points(args.pathway, pathways)
        actor = Actor(user_id=None, user_email=getpass.getuser(), role="admin", source="cli")
        fhir = FhirOptions(
            bundle=args.bundle,
            base=settings.fhir_base,
            patient_system=settings.fhir_patient_system,
            with_names=args.with_names,
        )
        done = export_to_file(
            db,
            args.output,
            fmt=args.format,
            actor=actor,
            library=library,
            patient_id=args.patient,
            date_from=args.date_from,
            date_to=args.date_to,
            dialect=args.dialect,
            pathway_id=args.pathway,
            time_points=points,
            fhir=fhir,
        )
    except ExportError as exc:
        print(f"pijnwacht export: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    print(f"wrote {', '.join(done.paths)} ({done.patients} patients)")
    return 0
