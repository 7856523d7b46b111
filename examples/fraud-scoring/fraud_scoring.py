"""Fraud scoring: velocity features per card over a 30-minute window sliding every minute.

A deterministic generator produces card authorizations (the same sequence on every run, so results can be
checked); for every card and every sliding window the job computes the authorization count, the amount sum,
the number of distinct merchants and the largest amount, turns them into a score between 0 and 1, and writes
one CSV row per card and window into the output directory. Files are committed on checkpoints, so what is
visible in the output is exactly once.

Event time is compressed: each authorization advances event time by ``--event-step-ms`` (default 3 s), so at
20 authorizations per second a 30-minute window closes every 30 s of wall-clock time and a new window slides
in every second. Run it through flinkops (see fraud-scoring.yaml) or with ``python fraud_scoring.py`` for a
local mini-cluster.
"""

from __future__ import annotations

import argparse

from pyflink.table import EnvironmentSettings, TableEnvironment

# 2026-01-01T00:00:00Z: the event time of authorization 0.
EPOCH_MS = 1767225600000


def build(t_env: TableEnvironment, args: argparse.Namespace) -> None:
    t_env.execute_sql(
        f"""
        CREATE TABLE authorizations (
            auth_id BIGINT,
            card_id AS CAST(MOD(auth_id * 7919, {args.cards}) AS INT),
            merchant_id AS CAST(MOD(auth_id * 104729, {args.merchants}) AS INT),
            amount AS CAST(MOD(auth_id * 31337, 200000) AS DECIMAL(12, 2)) / 100,
            ts AS TO_TIMESTAMP_LTZ({EPOCH_MS} + auth_id * {args.event_step_ms}, 3),
            WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
        ) WITH (
            'connector' = 'datagen',
            'rows-per-second' = '{args.rows_per_second}',
            'fields.auth_id.kind' = 'sequence',
            'fields.auth_id.start' = '0',
            'fields.auth_id.end' = '{args.max_records - 1}'
        )
        """
    )
    t_env.execute_sql(
        f"""
        CREATE TABLE fraud_scores (
            card_id INT,
            window_start TIMESTAMP(3),
            window_end TIMESTAMP(3),
            auth_count BIGINT,
            amount_sum DECIMAL(16, 2),
            distinct_merchants BIGINT,
            max_amount DECIMAL(12, 2),
            score DOUBLE
        ) WITH (
            'connector' = 'filesystem',
            'path' = '{args.output}',
            'format' = 'csv',
            'sink.rolling-policy.rollover-interval' = '30 s',
            'sink.rolling-policy.check-interval' = '5 s'
        )
        """
    )
    t_env.execute_sql(
        """
        INSERT INTO fraud_scores
        SELECT card_id, window_start, window_end, auth_count, amount_sum, distinct_merchants, max_amount,
               ROUND(0.4 * LEAST(auth_count / 15.0, 1.0)
                   + 0.3 * LEAST(CAST(amount_sum AS DOUBLE) / 10000.0, 1.0)
                   + 0.2 * LEAST(distinct_merchants / 10.0, 1.0)
                   + 0.1 * LEAST(CAST(max_amount AS DOUBLE) / 2000.0, 1.0), 4) AS score
        FROM (
            SELECT card_id,
                   CAST(window_start AS TIMESTAMP(3)) AS window_start,
                   CAST(window_end AS TIMESTAMP(3)) AS window_end,
                   COUNT(*) AS auth_count,
                   SUM(amount) AS amount_sum,
                   COUNT(DISTINCT merchant_id) AS distinct_merchants,
                   MAX(amount) AS max_amount
            FROM TABLE(HOP(TABLE authorizations, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '30' MINUTE))
            GROUP BY card_id, window_start, window_end
        )
        """
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="directory URI for the scored windows")
    parser.add_argument("--cards", type=int, default=50)
    parser.add_argument("--merchants", type=int, default=40)
    parser.add_argument("--rows-per-second", type=int, default=20)
    parser.add_argument("--event-step-ms", type=int, default=3000)
    parser.add_argument(
        "--max-records", type=int, default=200_000, help="the job finishes after this many authorizations"
    )
    args = parser.parse_args(argv)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    build(t_env, args)


if __name__ == "__main__":
    main()
