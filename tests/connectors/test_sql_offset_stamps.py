"""Text stamps that carry a UTC offset do not sort in time order against a cursor in the mapping's zone:
a row later in time whose text sorts before the cursor (a stamp written at -05:00 read in Asia/Shanghai)
is still read by the next run."""
from __future__ import annotations

import pytest
from test_sql_null_stamps import fresh, read


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request: pytest.FixtureRequest, tmp_path):
    from sqlfixtures import db_url_for
    return db_url_for(request, tmp_path)


def test_a_row_later_in_time_but_earlier_as_text_is_read(db_url: str) -> None:
    # 22:00 at -05:00 is 03:00 UTC on the 2nd, 11:00 in Shanghai: the cursor reads "2026-11-02 11:00"
    engine, table = fresh(db_url, [{"customer_no": "A", "name": "a", "updated_at": "2026-11-01T22:00:00-05:00"}],
                          text_stamp=True)
    try:
        first, batches = read(db_url, None)
        cursor = batches[-1].cursor
        assert sorted(first) == ["A"]
        # an hour later in time, yet "2026-11-01T23..." sorts before "2026-11-02 11:00" as text
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"customer_no": "B", "name": "b", "updated_at": "2026-11-01T23:00:00-05:00"}])
        second, batches = read(db_url, cursor)
        assert "B" in second, sorted(second)
        assert cursor.get("offsets") is True           # what the first read saw, kept in the cursor
        assert batches[-1].cursor["ts"] >= cursor["ts"], "the cursor never goes back"
    finally:
        engine.dispose()


def test_naive_text_stamps_keep_the_exact_bound(db_url: str) -> None:
    engine, _ = fresh(db_url, [{"customer_no": "A", "name": "a", "updated_at": "2026-11-01 22:00:00"},
                               {"customer_no": "B", "name": "b", "updated_at": "2026-11-02 08:00:00"}],
                      text_stamp=True)
    try:
        first, batches = read(db_url, None)
        cursor = batches[-1].cursor
        assert sorted(first) == ["A", "B"] and "offsets" not in cursor
        again, _ = read(db_url, cursor)
        assert sorted(again) == ["B"]      # the closed bound: the cursor's own row, nothing earlier
    finally:
        engine.dispose()
