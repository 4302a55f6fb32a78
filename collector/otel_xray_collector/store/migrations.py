"""Versioned schemas: each store's schema is a list of steps, applied in order, recorded in
``xray_schema``; a collector refuses a database a newer collector has migrated further.

Step N (1-based) moves a database from version N-1 to N. Steps are append-only: a released step
is never edited, a change is a new step. On PostgreSQL every collector of a cluster may start at
once, so migration runs in one transaction under an advisory lock.
"""

from __future__ import annotations

from typing import Any

#: Arbitrary constant naming the advisory lock the collectors migrate under.
_MIGRATION_LOCK = 0x78726179  # "xray"


class SchemaTooNew(ValueError):
    """The database was migrated by a newer collector than this one."""


POSTGRES: tuple[str, ...] = (
    # 1: the shared store (postgres.py describes the concurrency design)
    """
    CREATE SEQUENCE segments_seq;
    CREATE TABLE segments(
        trace_id text NOT NULL,
        seg_id text NOT NULL,
        seq bigint NOT NULL DEFAULT nextval('segments_seq'),
        in_progress boolean NOT NULL,
        stored_at double precision NOT NULL,
        doc bytea NOT NULL,
        PRIMARY KEY (trace_id, seg_id)
    );
    CREATE TABLE pending(trace_id text PRIMARY KEY);
    CREATE TABLE traces(
        trace_id text PRIMARY KEY,
        start_time double precision NOT NULL,
        end_time double precision NOT NULL,
        id_time double precision NOT NULL,
        revision integer NOT NULL,
        summary bytea NOT NULL,
        facts bytea NOT NULL,
        contrib bytea NOT NULL,
        touched double precision NOT NULL
    );
    CREATE INDEX traces_by_start ON traces(start_time);
    CREATE INDEX traces_by_end ON traces(end_time);
    CREATE INDEX traces_by_id_time ON traces(id_time);
    CREATE INDEX traces_by_touched ON traces(touched);
    CREATE TABLE agg_stats(
        bucket bigint NOT NULL,
        kind integer NOT NULL,
        key text NOT NULL,
        refs bigint NOT NULL,
        ok bigint NOT NULL,
        err bigint NOT NULL,
        thr bigint NOT NULL,
        fault bigint NOT NULL,
        total bigint NOT NULL,
        rt double precision NOT NULL,
        smin double precision,
        emax double precision,
        hist jsonb NOT NULL,
        dhist jsonb NOT NULL,
        PRIMARY KEY (bucket, kind, key)
    );
    -- the aggregate rows in the shape the shared queries read (store/queries.py)
    CREATE VIEW agg AS SELECT bucket, kind, key, refs,
        jsonb_build_array(ok, err, thr, fault, total, rt, smin, emax, hist, dhist)::text AS stats
        FROM agg_stats;
    -- histogram addition: per-millisecond counts summed, zero counts dropped
    CREATE FUNCTION xray_hist_add(a jsonb, b jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT COALESCE(jsonb_object_agg(k, n), '{}'::jsonb) FROM (
            SELECT k, SUM(n) AS n FROM (
                SELECT key AS k, value::bigint AS n FROM jsonb_each_text(a)
                UNION ALL SELECT key, value::bigint FROM jsonb_each_text(b)
            ) AS parts GROUP BY k
        ) AS sums WHERE n <> 0
    $$;
    CREATE TABLE sampling_rules(
        name text PRIMARY KEY,
        origin text NOT NULL,
        created_at double precision NOT NULL,
        modified_at double precision NOT NULL,
        record text NOT NULL
    );
    CREATE TABLE xray_groups(
        name text PRIMARY KEY,
        arn text NOT NULL UNIQUE,
        created_at double precision NOT NULL,
        record text NOT NULL
    );
    """,
    # 2: a change counter per kind of API resource, moved in the transaction of each change, so
    # every collector notices a rule or group changed through another (store/resources.py)
    """
    CREATE TABLE resource_versions(kind text PRIMARY KEY, version bigint NOT NULL);
    """,
    # 3: segments, traces and aggregates partitioned by day, so retention drops a day's table
    # instead of deleting its rows (store/partitions.py); retention settings kept in the store,
    # shared by every collector (store/resources.py). The v2 rows move into the DEFAULT
    # partitions here; the store's first maintenance pass then moves each day of the retention
    # window into its own partition.
    """
    -- the partition day of a trace: the day of the epoch its id starts with (UTC days since
    -- 1970), -1 for an id without one; pure, so every collector files a trace in the same day
    CREATE FUNCTION xray_trace_day(trace_id text) RETURNS integer
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN trace_id ~ '^1-[0-9a-fA-F]{8}-'
            THEN (('x' || lpad(substr(trace_id, 3, 8), 16, '0'))::bit(64)::bigint / 86400)::integer
            ELSE -1 END
    $$;
    DROP VIEW agg;
    ALTER TABLE segments RENAME TO segments_v2;
    ALTER INDEX segments_pkey RENAME TO segments_v2_pkey;
    ALTER TABLE traces RENAME TO traces_v2;
    ALTER INDEX traces_pkey RENAME TO traces_v2_pkey;
    DROP INDEX traces_by_start, traces_by_end, traces_by_id_time, traces_by_touched;
    ALTER TABLE agg_stats RENAME TO agg_stats_v2;
    ALTER INDEX agg_stats_pkey RENAME TO agg_stats_v2_pkey;
    -- the same columns (LIKE), plus the day in the tables and keys of segments and traces
    CREATE TABLE segments(
        LIKE segments_v2 INCLUDING DEFAULTS,
        day integer NOT NULL,
        PRIMARY KEY (trace_id, seg_id, day)
    ) PARTITION BY RANGE (day);
    CREATE TABLE segments_default PARTITION OF segments DEFAULT;
    CREATE TABLE traces(
        LIKE traces_v2,
        day integer NOT NULL,
        PRIMARY KEY (trace_id, day)
    ) PARTITION BY RANGE (day);
    CREATE TABLE traces_default PARTITION OF traces DEFAULT;
    CREATE TABLE agg_stats(LIKE agg_stats_v2, PRIMARY KEY (bucket, kind, key))
        PARTITION BY RANGE (bucket);
    CREATE TABLE agg_stats_default PARTITION OF agg_stats DEFAULT;
    INSERT INTO segments(trace_id, seg_id, day, seq, in_progress, stored_at, doc)
        SELECT trace_id, seg_id, xray_trace_day(trace_id), seq, in_progress, stored_at, doc
        FROM segments_v2;
    INSERT INTO traces(trace_id, day, start_time, end_time, id_time, revision, summary, facts,
                       contrib, touched)
        SELECT trace_id, xray_trace_day(trace_id), start_time, end_time, id_time, revision,
               summary, facts, contrib, touched
        FROM traces_v2;
    INSERT INTO agg_stats SELECT * FROM agg_stats_v2;
    DROP TABLE segments_v2, traces_v2, agg_stats_v2;
    CREATE INDEX traces_by_start ON traces(start_time);
    CREATE INDEX traces_by_end ON traces(end_time);
    CREATE INDEX traces_by_id_time ON traces(id_time);
    CREATE INDEX traces_by_touched ON traces(touched);
    CREATE VIEW agg AS SELECT bucket, kind, key, refs,
        jsonb_build_array(ok, err, thr, fault, total, rt, smin, emax, hist, dhist)::text AS stats
        FROM agg_stats;
    CREATE TABLE xray_settings(name text PRIMARY KEY, value double precision NOT NULL);
    """,
)


#: SQLite's schema version: the schema of database.py (created with IF NOT EXISTS, so a file from
#: before versioning is adopted as version 1). 2 added ``resource_versions``, 3 ``xray_settings``
#: (the retention settings every collector of the store applies).
SQLITE_VERSION = 3


def record_sqlite_version(conn: Any) -> int:
    """Check and record a SQLite file's version (inside the writer's transaction)."""
    conn.execute("CREATE TABLE IF NOT EXISTS xray_schema(version INTEGER NOT NULL)")
    found = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM xray_schema").fetchone()[0])
    check_version(found, SQLITE_VERSION)
    if found < SQLITE_VERSION:
        conn.execute("INSERT INTO xray_schema(version) VALUES (?)", (SQLITE_VERSION,))
    return found


def migrate(conn: Any, steps: tuple[str, ...]) -> int:
    """Bring a PostgreSQL database (``conn`` inside a transaction) to ``len(steps)``; returns
    the version found. Raises :class:`SchemaTooNew` for a database beyond ``steps``."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
    # checked first: CREATE ... IF NOT EXISTS needs the right to create in the schema even when
    # the table exists, which a role that only reads and writes the tables does not have
    if conn.execute("SELECT to_regclass('xray_schema') IS NULL").fetchone()[0]:
        conn.execute("CREATE TABLE xray_schema(version integer NOT NULL)")
    found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM xray_schema").fetchone()[0]
    check_version(found, len(steps))
    for version in range(found + 1, len(steps) + 1):
        conn.execute(steps[version - 1])
        conn.execute("INSERT INTO xray_schema(version) VALUES (%s)", (version,))
    return int(found)


def check_version(found: int, known: int) -> None:
    if found > known:
        raise SchemaTooNew(
            f"database schema version {found} is newer than this collector understands"
            f" ({known}); upgrade otel-xray-collector"
        )
