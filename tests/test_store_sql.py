"""The pieces that let one body of SQL serve both databases."""

from __future__ import annotations

import asyncio

import pytest

from parley.relay.store.sqlite_engine import run_now


def test_named_parameters_become_psycopg_placeholders_and_nothing_else() -> None:
    pytest.importorskip("psycopg")
    from parley.relay.store.postgres_engine import pyformat

    sql = "SELECT '{}'::bigint[], m.id FROM messages m WHERE m.id = :id AND content LIKE '50%' AND x = ANY(:ids)"
    assert pyformat(sql) == (
        b"SELECT '{}'::bigint[], m.id FROM messages m WHERE m.id = %(id)s AND content LIKE '50%%' AND x = ANY(%(ids)s)"
    )


def test_an_operation_that_suspends_is_refused_not_half_run() -> None:
    async def never_suspends() -> int:
        return 7

    async def suspends() -> int:
        await asyncio.sleep(0)
        return 7

    assert run_now(never_suspends()) == 7
    with pytest.raises(RuntimeError, match="suspended"):
        run_now(suspends())
