"""Input generator for the conversions batch example (``flinkops.examples.ConversionsBatchJob``).

Writes ``records`` partner conversions, spread evenly over ``hours`` consecutive hours starting at
2026-01-01T00 UTC, as CSV objects partitioned by hour::

    <prefix>hour=2026-01-01T00/part-0.csv
    <prefix>hour=2026-01-01T00/part-1.csv
    ...

Each line is ``conversion_id,partner_id,hour,amount_cents`` (no header), e.g. ``17,partner-007,2026-01-01T00,4599``.
``conversion_id`` runs from 0 to ``records - 1`` across all files; ``partner_id`` is ``partner-000`` ..
``partner-<partners-1>``; ``amount_cents`` is 1.00 to 499.99. The content is a pure function of
``(records, hours, partners, seed)``: hour ``h`` draws its partners and amounts from its own
``random.Random(f"{seed}:{h}")``. :func:`expected_totals` replays the same draws and aggregates them, so a test
knows the job's correct output without reading the files back.

Speed: the rows are drawn with ``Random.choices`` and joined into one string per file, and uploads run on a few
threads while the next file is generated; three million records take a few seconds on two cores.

Usage (credentials and endpoint from the flags or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL)::

    python examples/conversions-batch/generate.py --bucket lake --prefix conversions/raw/ --records 3000000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["BASE_HOUR", "expected_totals", "generate", "hour_label", "partner_label"]

# The first hour of the generated data.
BASE_HOUR = datetime(2026, 1, 1, tzinfo=UTC)
_MIN_CENTS = 100
_MAX_CENTS = 50_000  # exclusive
_UPLOAD_THREADS = 4


def hour_label(hour: int) -> str:
    """The ``yyyy-MM-ddTHH`` label of hour number ``hour`` (0 = 2026-01-01T00)."""
    return (BASE_HOUR + timedelta(hours=hour)).strftime("%Y-%m-%dT%H")


def partner_label(partner: int) -> str:
    """The id of partner number ``partner``: ``partner-007``."""
    return f"partner-{partner:03d}"


def _hour_sizes(records: int, hours: int) -> list[int]:
    """How many records each hour gets: as even as possible, the first ``records % hours`` hours one more."""
    base, extra = divmod(records, hours)
    return [base + (1 if h < extra else 0) for h in range(hours)]


def _draws(seed: int, hour: int, size: int, partners: int) -> tuple[list[int], list[int]]:
    """Partner numbers and amounts of one hour's records, in conversion-id order."""
    rng = random.Random(f"{seed}:{hour}")
    chosen = rng.choices(range(partners), k=size)
    amounts = rng.choices(range(_MIN_CENTS, _MAX_CENTS), k=size)
    return chosen, amounts


def _files(records: int, hours: int, partners: int, seed: int, parts_per_hour: int) -> Iterator[tuple[str, str]]:
    """(relative object name, CSV text) of every file, hour by hour."""
    labels = [partner_label(p) for p in range(partners)]
    first_id = 0
    for hour, size in enumerate(_hour_sizes(records, hours)):
        chosen, amounts = _draws(seed, hour, size, partners)
        label = hour_label(hour)
        bounds = [size * i // parts_per_hour for i in range(parts_per_hour + 1)]
        for part in range(parts_per_hour):
            start, end = bounds[part], bounds[part + 1]
            if start == end:
                continue
            text = "".join(f"{first_id + i},{labels[chosen[i]]},{label},{amounts[i]}\n" for i in range(start, end))
            yield f"hour={label}/part-{part}.csv", text
        first_id += size


def _check(records: int, hours: int, partners: int, parts_per_hour: int = 1) -> None:
    if records < 0 or hours <= 0 or partners <= 0 or parts_per_hour <= 0:
        raise ValueError("records must be >= 0; hours, partners and parts_per_hour > 0")


def generate(
    client: Any,
    bucket: str,
    prefix: str,
    records: int,
    hours: int,
    partners: int,
    seed: int,
    *,
    parts_per_hour: int = 2,
) -> None:
    """Upload the generated CSV files to ``s3://bucket/<prefix>hour=.../part-<i>.csv`` with ``client`` (boto3).

    ``prefix`` gets a trailing ``/`` when it has none. Existing objects under other names are left alone; an
    hour with fewer records than ``parts_per_hour`` gets fewer files.
    """
    _check(records, hours, partners, parts_per_hour)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    with ThreadPoolExecutor(max_workers=_UPLOAD_THREADS) as pool:
        pending: list[Future[Any]] = []
        for name, text in _files(records, hours, partners, seed, parts_per_hour):
            body = text.encode()
            pending.append(
                pool.submit(client.put_object, Bucket=bucket, Key=prefix + name, Body=body, ContentType="text/csv")
            )
            if len(pending) >= 2 * _UPLOAD_THREADS:  # bound the bodies held in memory
                pending.pop(0).result()
        for future in pending:
            future.result()


def generate_files(root: Path, records: int, hours: int, partners: int, seed: int, *, parts_per_hour: int = 2) -> None:
    """The same files as :func:`generate`, written under the local directory ``root`` (a job reads them as
    ``file://<root>``: the input of a run on this machine without an S3 server)."""
    _check(records, hours, partners, parts_per_hour)
    for name, text in _files(records, hours, partners, seed, parts_per_hour):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def expected_totals(records: int, hours: int, partners: int, seed: int) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(hour, partner_id): (conversions, revenue_cents)}`` of what :func:`generate` writes, from the draws.

    Only (hour, partner) pairs with at least one conversion appear, as in the job's output.
    """
    _check(records, hours, partners)
    labels = [partner_label(p) for p in range(partners)]
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for hour, size in enumerate(_hour_sizes(records, hours)):
        chosen, amounts = _draws(seed, hour, size, partners)
        counts = [0] * partners
        sums = [0] * partners
        for partner, amount in zip(chosen, amounts, strict=True):
            counts[partner] += 1
            sums[partner] += amount
        label = hour_label(hour)
        for partner in range(partners):
            if counts[partner]:
                totals[(label, labels[partner])] = (counts[partner], sums[partner])
    return totals


def _client(endpoint: str | None, access_key: str | None, secret_key: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate hourly partner conversions as CSV files in S3.")
    parser.add_argument(
        "--endpoint", default=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    parser.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bucket", help="write to this S3 bucket (under --prefix)")
    target.add_argument("--dir", type=Path, help="write to this local directory instead of S3")
    parser.add_argument("--prefix", default="conversions/raw/")
    parser.add_argument("--records", type=int, default=3_000_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--partners", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts-per-hour", type=int, default=2)
    parser.add_argument("--create-bucket", action="store_true", help="create the bucket when it does not exist")
    parser.add_argument("--expected", help="also write the expected hourly totals to this local CSV file")
    args = parser.parse_args(argv)
    if args.dir is not None:
        generate_files(args.dir, args.records, args.hours, args.partners, args.seed, parts_per_hour=args.parts_per_hour)
        print(f"wrote {args.records} conversions under {args.dir}")
        return _expected(args)
    client = _client(args.endpoint, args.access_key, args.secret_key, args.region)
    if args.create_bucket:
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if args.bucket not in existing:
            client.create_bucket(Bucket=args.bucket)
    generate(
        client,
        args.bucket,
        args.prefix,
        args.records,
        args.hours,
        args.partners,
        args.seed,
        parts_per_hour=args.parts_per_hour,
    )
    print(f"wrote {args.records} conversions to s3://{args.bucket}/{args.prefix}")
    return _expected(args)


def _expected(args: argparse.Namespace) -> int:
    if args.expected:
        totals = expected_totals(args.records, args.hours, args.partners, args.seed)
        with open(args.expected, "w", encoding="utf-8") as out:
            for (hour, partner), (count, revenue) in sorted(totals.items()):
                out.write(f"{hour},{partner},{count},{revenue}\n")
        print(f"wrote {len(totals)} expected totals to {args.expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
