"""Benchmark: `prereg-bot directory import` against a plain bulk insert of the same rows.

Both run in this one process, side by side, on the same kind of database, alternating, each
into a freshly migrated database; the figure is the median of the runs and the ratio of the
medians. The import validates every row first (R6-style email shape, country code, booleans,
duplicates) and then upserts; the baseline only converts the fields and INSERTs them.

    .venv/bin/python -m bench.directory_import [--rows 10000] [--runs 5] [--backend both]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert

from bench.common import median, scratch_postgres, scratch_sqlite, timed
from bot.directory_import import HEADER, DirectoryImportError, import_file
from store.db import Database, make_engine
from store.migrate import upgrade
from store.models import DirectoryAccount

COUNTRIES = ("DE", "FR", "IT", "ES", "NL", "SG", "JP", "US")


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    flag = lambda p: "true" if rnd.random() < p else "false"  # noqa: E731
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                [
                    f"customer{i}@company{i % 997}.example",
                    rnd.choice(COUNTRIES),
                    flag(0.02),
                    rnd.choice(("", "", "", "Acme GmbH", "Beta SARL")),
                    flag(0.05),
                    flag(0.05),
                    flag(0.1),
                    flag(0.03),
                    flag(0.01),
                ]
            )


def plain_bulk_insert(url: str, path: Path) -> None:
    """The baseline: read the CSV, convert the fields, one executemany INSERT."""
    now = datetime.now(UTC)
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        rows = [
            {
                "email_norm": r[0].lower(),
                "country": r[1],
                "china_mainland": r[2] == "true",
                "associated_partner": r[3] or None,
                "consumer": r[4] == "true",
                "contract": r[5] == "true",
                "cash_spend": r[6] == "true",
                "direct_sales_preregistered": r[7] == "true",
                "enterprise_master": r[8] == "true",
                "updated_at": now,
            }
            for r in reader
        ]
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(DirectoryAccount.__table__), rows)
    engine.dispose()


def prereg_import(url: str, path: Path) -> None:
    db = Database(url)
    try:
        import_file(db, str(path), datetime.now(UTC))
    finally:
        db.dispose()


def count_rows(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            DirectoryAccount.__table__.select().with_only_columns(
                DirectoryAccount.__table__.c.email_norm
            )
        ).fetchall()
    engine.dispose()
    return len(n)


def run_backend(name: str, scratch, path: Path, runs: int, expected: int) -> float:  # type: ignore[no-untyped-def]
    base_times: list[float] = []
    ours_times: list[float] = []
    for _ in range(runs):
        for label, fn, bucket in (
            ("baseline", plain_bulk_insert, base_times),
            ("import", prereg_import, ours_times),
        ):
            with scratch() as url:
                upgrade(url)
                bucket.append(timed(lambda fn=fn, url=url: fn(url, path)))
                assert count_rows(url) == expected, f"{label} stored a wrong number of rows"
    base, ours = median(base_times), median(ours_times)
    ratio = ours / base
    print(
        f"{name:10s} plain bulk insert {base * 1000:8.1f} ms | directory import "
        f"{ours * 1000:8.1f} ms | ratio {ratio:.2f}x (goal <= 3x) | median of {runs}"
    )
    return ratio


def check_bad_row_imports_nothing(url: str, directory: Path) -> None:
    bad = directory / "bad.csv"
    write_csv(bad, 100)
    with bad.open("a") as fh:
        fh.write("not-an-email,DE,false,,false,false,false,false,false\n")
    upgrade(url)
    db = Database(url)
    try:
        import_file(db, str(bad), datetime.now(UTC))
        raise SystemExit("a bad row was accepted")
    except DirectoryImportError as exc:
        print(f"bad row check: {exc.errors[0]} -> {count_rows(url)} rows stored")
    finally:
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    print("command:", " ".join([".venv/bin/python -m bench.directory_import", *sys.argv[1:]]))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = directory / "directory.csv"
        write_csv(path, args.rows)
        print(f"rows: {args.rows}")
        worst = 0.0
        if args.backend in ("sqlite", "both"):
            worst = max(
                worst,
                run_backend(
                    "sqlite", lambda: scratch_sqlite(directory), path, args.runs, args.rows
                ),
            )
        if args.backend in ("postgres", "both"):
            worst = max(
                worst, run_backend("postgresql", scratch_postgres, path, args.runs, args.rows)
            )
        with scratch_sqlite(directory) as url:
            check_bad_row_imports_nothing(url, directory)
    return 0 if worst <= 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
