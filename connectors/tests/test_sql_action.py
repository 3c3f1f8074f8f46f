"""sql.query against the PostgreSQL and MariaDB running on this machine, each in a throw-away database made by
the fixtures: values bound by the driver, read-only transactions, max_rows, JSON-safe values, the address guard
on the database host, and the vault of the workflow's owner only."""
from __future__ import annotations

import ipaddress
import secrets as random

import psycopg
import pymysql
import pytest
from django.contrib.auth import get_user_model

from connectors.base import ActionConfig, ActionContext, ActionError
from connectors.secrets import secret_set, secret_value
from connectors.sql.actions import SqlQuery
from connectors.sql.values import iso_duration

pytestmark = pytest.mark.django_db

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
MARIADB_SOCKET = "/run/mysqld/mysqld.sock"
INJECTION = "x'); DROP TABLE people; --"


def _pg_database():
    name = f"ff_sql_{random.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(f"postgres://postgres@127.0.0.1:5432/{name}", autocommit=True) as db:
        db.execute("CREATE TABLE people (id int PRIMARY KEY, name text, born date, seen timestamptz, "
                   "balance numeric(10, 2), photo bytea, ref uuid, wake time, nap interval, tags text[], "
                   "extra jsonb, ratio float8, ok boolean)")
        db.execute("INSERT INTO people VALUES (1, 'Ada', '1815-12-10', '2024-05-01 13:45:00+00', 12.50, "
                   "'\\x00ff10', '12345678-1234-5678-1234-567812345678', '07:30:00', '1 day 02:03:04.5', "
                   "'{a,b}', '{\"k\": [1, 2]}', 'NaN', true)")
        db.execute("INSERT INTO people (id, name) SELECT g, 'person ' || g FROM generate_series(2, 30) g")
    return name


def _pg_drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _mariadb_root() -> pymysql.Connection:
    """root over TCP with the empty password this machine's MariaDB has, else over its socket as the OS root."""
    reasons = []
    for kwargs in ({"host": "127.0.0.1", "port": 3306}, {"unix_socket": MARIADB_SOCKET}):
        try:
            return pymysql.connect(user="root", password="", autocommit=True, connect_timeout=5, **kwargs)
        except pymysql.err.MySQLError as exc:
            reasons.append(f"{kwargs}: {exc}")
    pytest.skip("MariaDB is not usable here as root (" + "; ".join(reasons) + ")")


@pytest.fixture
def pg_db():
    name = _pg_database()
    yield name
    _pg_drop(name)


@pytest.fixture
def mariadb_db():
    """A database and a user with a password, made and dropped as root; yields (database, user, password)."""
    root = _mariadb_root()
    suffix = random.token_hex(4)
    name, user, password = f"ff_sql_{suffix}", f"ff_{suffix}", f"pw-{random.token_hex(8)}"
    try:
        with root.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
            cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL ON {name}.* TO '{user}'@'127.0.0.1'")
            cursor.execute(f"CREATE TABLE {name}.people (id int PRIMARY KEY, name varchar(100), born date, "
                           "seen datetime(3), balance decimal(10, 2), photo varbinary(10), wake time, extra json)")
            cursor.execute(f"INSERT INTO {name}.people VALUES (1, 'Ada', '1815-12-10', '2024-05-01 13:45:00.250', "
                           "12.50, X'00ff10', '-01:30:00', '{\"k\": [1, 2]}')")
            cursor.executemany(f"INSERT INTO {name}.people (id, name) VALUES (%s, %s)",
                               [(n, f"person {n}") for n in range(2, 31)])
        yield name, user, password
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        root.close()


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user("bob", password="pw")


@pytest.fixture
def log_lines():
    return []


@pytest.fixture
def context(alice, log_lines):
    def make(*, owner=None, allowed=LOOPBACK, timeout=60.0) -> ActionContext:
        return ActionContext(run_id=1, task_id="query", owner_id=(owner or alice).id, timeout=timeout,
                             config=ActionConfig(http_allowed_networks=allowed), log=log_lines.append)

    return make


@pytest.fixture(params=["postgres", "mariadb"])
def database(request, alice):
    """Alice's secret DB naming one throw-away database; yields the dialect."""
    if request.param == "postgres":
        name = request.getfixturevalue("pg_db")
        url = f"postgres://postgres:unused-pw@127.0.0.1:5432/{name}"
    else:
        name, user, password = request.getfixturevalue("mariadb_db")
        url = f"mysql://{user}:{password}@127.0.0.1:3306/{name}"
    secret_set(owner_id=alice.id, name="DB", value=url)
    return request.param


def run(context, **inputs) -> dict:
    return SqlQuery().execute({"database": "DB", **inputs}, context)


def names(context) -> list[str]:
    return [r["name"] for r in run(context, query="SELECT name FROM people ORDER BY id", max_rows=100)["rows"]]


def test_postgres_values_come_back_as_json_dates_iso_decimals_as_strings_bytes_as_base64(context, pg_db, alice):
    secret_set(owner_id=alice.id, name="DB", value=f"postgresql://postgres@127.0.0.1/{pg_db}")

    output = run(context(), query="SELECT *, 1 AS id FROM people WHERE id = %(id)s", params={"id": 1})

    assert output["row_count"] == 1 and output["truncated"] is False
    assert output["rows"][0] == {
        "id": 1, "name": "Ada", "born": "1815-12-10", "seen": "2024-05-01T13:45:00+00:00", "balance": "12.50",
        "photo": "AP8Q", "ref": "12345678-1234-5678-1234-567812345678", "wake": "07:30:00",
        "nap": "P1DT2H3M4.5S", "tags": ["a", "b"], "extra": {"k": [1, 2]}, "ratio": "NaN", "ok": True,
        "id_2": 1,
    }


def test_mariadb_values_come_back_as_json_dates_iso_decimals_as_strings_bytes_as_base64(context, mariadb_db,
                                                                                        alice):
    name, user, password = mariadb_db
    secret_set(owner_id=alice.id, name="DB", value=f"mariadb://{user}:{password}@127.0.0.1/{name}")

    output = run(context(), query="SELECT * FROM people WHERE id = %(id)s", params={"id": 1})

    row = output["rows"][0]
    assert row == {"id": 1, "name": "Ada", "born": "1815-12-10", "seen": "2024-05-01T13:45:00.250000",
                   "balance": "12.50", "photo": "AP8Q", "wake": "-PT1H30M", "extra": row["extra"]}
    assert row["extra"].replace(" ", "") == '{"k":[1,2]}'  # MariaDB's JSON is text


def test_durations_are_iso_8601():
    from datetime import timedelta

    assert iso_duration(timedelta(0)) == "PT0S"
    assert iso_duration(timedelta(days=3)) == "P3D"
    assert iso_duration(timedelta(hours=-1, minutes=-30)) == "-PT1H30M"
    assert iso_duration(timedelta(seconds=0.25)) == "PT0.25S"


def test_an_injection_attempt_in_a_parameter_stays_data(context, database):
    found = run(context(), query="SELECT id FROM people WHERE name = %(name)s", params={"name": INJECTION})
    run(context(), read_only=False, query="INSERT INTO people (id, name) VALUES (%(id)s, %(name)s)",
        params={"id": 100, "name": INJECTION})

    assert found["rows"] == []
    stored = run(context(), query="SELECT name FROM people WHERE id = 100")["rows"]
    assert stored == [{"name": INJECTION}]
    assert run(context(), query="SELECT count(*) AS n FROM people")["rows"][0]["n"] == 31


@pytest.mark.parametrize("statement", [
    "INSERT INTO people (id, name) VALUES (200, 'Mallory')",
    "UPDATE people SET name = 'Mallory'",
    "CREATE TABLE mallory (id int)",  # DDL commits implicitly on MariaDB: the session is read-only too
    "DROP TABLE people",
])
def test_a_read_only_query_cannot_write(context, database, statement):
    with pytest.raises(ActionError, match="read-only|READ ONLY") as refused:
        run(context(), query=statement)

    assert refused.value.retryable is False
    assert names(context())[:2] == ["Ada", "person 2"]
    assert run(context(), query="SELECT count(*) AS n FROM people")["rows"][0]["n"] == 30


def test_a_second_statement_cannot_end_the_read_only_transaction(context, database):
    with pytest.raises(ActionError, match="query failed"):
        run(context(), query="SELECT 1; COMMIT; DELETE FROM people")

    assert run(context(), query="SELECT count(*) AS n FROM people")["rows"][0]["n"] == 30


def test_read_only_false_commits_a_write(context, database):
    output = run(context(), read_only=False, query="UPDATE people SET name = %(name)s WHERE id = 1",
                 params={"name": "Ada Lovelace"})

    assert output == {"rows": [], "row_count": 0, "truncated": False}
    assert names(context())[0] == "Ada Lovelace"


def test_max_rows_keeps_the_first_rows_and_says_there_were_more(context, database):
    first = run(context(), query="SELECT id FROM people ORDER BY id", max_rows=5)
    exact = run(context(), query="SELECT id FROM people ORDER BY id", max_rows=30)
    default = run(context(), query="SELECT id FROM people ORDER BY id")

    assert first == {"rows": [{"id": n} for n in range(1, 6)], "row_count": 5, "truncated": True}
    assert exact["row_count"] == 30 and exact["truncated"] is False
    assert default["row_count"] == 30 and default["truncated"] is False


def test_a_read_write_statement_completes_even_when_its_rows_are_truncated(context, database):
    output = run(context(), read_only=False, max_rows=2,
                 query="INSERT INTO people (id, name) SELECT id + 1000, 'copy' FROM people RETURNING id")

    assert output["row_count"] == 2 and output["truncated"] is True
    assert run(context(), query="SELECT count(*) AS n FROM people")["rows"][0]["n"] == 60


def test_a_result_larger_than_a_task_output_stops_being_read(context, database):
    big = "repeat('x', 200000)" if database == "postgres" else "REPEAT('x', 200000)"
    output = run(context(), query=f"SELECT id, {big} AS filler FROM people ORDER BY id", max_rows=100)

    # 30 rows of 200 kB would be 6 MB; the rows that fit in a task's 4 MiB output are kept.
    assert output["truncated"] is True and 15 < output["row_count"] < 22
    assert [row["id"] for row in output["rows"]] == list(range(1, output["row_count"] + 1))


def test_a_statement_running_past_its_timeout_fails_the_task(context, database):
    sleep = "SELECT pg_sleep(5)" if database == "postgres" else "SELECT SLEEP(5)"

    with pytest.raises(ActionError, match="statement timeout|max_statement_time") as failed:
        run(context(), query=sleep, timeout=0.5)

    assert failed.value.retryable is False


def test_the_database_host_is_refused_as_loopback_unless_its_network_is_allowed(context, database, alice):
    with pytest.raises(ActionError, match=r"^refused: 127\.0\.0\.1 is a loopback address") as refused:
        run(context(allowed=()), query="SELECT 1 AS one")
    assert refused.value.retryable is False

    assert run(context(), query="SELECT 1 AS one")["rows"] == [{"one": 1}]


def test_a_host_name_is_resolved_once_and_checked_like_an_address(context, pg_db, alice):
    secret_set(owner_id=alice.id, name="DB", value=f"postgres://postgres@localhost:5432/{pg_db}")

    with pytest.raises(ActionError, match=r"^refused: localhost resolves to .*, a loopback address"):
        run(context(allowed=()), query="SELECT 1 AS one")
    with pytest.raises(ActionError, match=r"^refused: "):
        run(context(allowed=(ipaddress.ip_network("10.0.0.0/8"),)), query="SELECT 1 AS one")
    assert run(context(), query="SELECT 1 AS one")["rows"] == [{"one": 1}]


def test_another_users_secret_name_is_not_usable(context, database, bob):
    with pytest.raises(ActionError) as refused:
        run(context(owner=bob), query="SELECT name FROM people")

    assert str(refused.value).startswith("the workflow's owner has no secret 'DB'")
    assert refused.value.retryable is False


def test_a_missing_secret_is_named_and_an_unusable_url_is_explained_without_showing_it(context, alice):
    with pytest.raises(ActionError, match="the workflow's owner has no secret 'REPORTS'"):
        SqlQuery().execute({"database": "REPORTS", "query": "SELECT 1"}, context())

    for url, problem in [("https://u:hunter2@db.example/x", "the scheme is https://"),
                         ("postgres://u:hunter2@/x", "names no host"),
                         ("postgres://u:hunter2@db.example/x?host=/var/run/postgresql", "'host' is not supported"),
                         ("mysql://u:hunter2@db.example:99999/x", "the port")]:
        secret_set(owner_id=alice.id, name="DB", value=url)
        with pytest.raises(ActionError) as refused:
            run(context(), query="SELECT 1")
        assert str(refused.value).startswith("secret 'DB' does not hold a usable database URL: ")
        assert problem in str(refused.value) and "hunter2" not in str(refused.value)


def test_connection_errors_say_what_failed_without_the_password(context, database, alice, log_lines):
    url = secret_value("DB", owner_id=alice.id)
    if database == "postgres":  # trust auth here: a database that does not exist, reached with a password
        wrong = url.replace("unused-pw", "hunter2-secret").replace("/ff_sql_", "/missing_ff_sql_")
    else:
        wrong = url.replace(":pw-", ":hunter2-secret-")
    secret_set(owner_id=alice.id, name="DB", value=wrong)

    with pytest.raises(ActionError, match="^could not connect to the (postgres|mysql) database") as failed:
        run(context(), query="SELECT 1")

    assert "does not exist" in str(failed.value) or "Access denied" in str(failed.value)
    assert "hunter2" not in str(failed.value) and not any("hunter2" in line for line in log_lines)
    assert failed.value.retryable is False


def test_an_unreachable_database_fails_the_task_as_retryable(context, alice):
    secret_set(owner_id=alice.id, name="DB", value="postgres://u:hunter2@127.0.0.1:9/db")

    with pytest.raises(ActionError, match="^could not connect to the postgres database db on 127.0.0.1:9") as e:
        run(context(), query="SELECT 1")

    assert e.value.retryable is True and "hunter2" not in str(e.value)


@pytest.mark.parametrize("query, params, message", [
    ("SELECT %(id)s", {}, "params: the query uses %(id)s but params is empty"),
    ("SELECT %(id)s, %(name)s", {"id": 1}, "params.name: the query uses %(name)s but params has no 'name'"),
    ("SELECT %s, %(id)s", {"id": 1}, "query: use %(name)s placeholders with params"),
])
def test_placeholders_that_do_not_match_params_fail_before_connecting(context, query, params, message):
    with pytest.raises(ActionError) as refused:
        SqlQuery().execute({"database": "NOT_EVEN_LOOKED_UP", "query": query, "params": params}, context())

    assert str(refused.value).startswith(message)


def test_a_literal_percent_is_kept_without_params_and_doubled_with_them(context, database):
    plain = run(context(), query="SELECT name FROM people WHERE name LIKE 'person 1%' ORDER BY id")
    bound = run(context(), query="SELECT name FROM people WHERE name LIKE 'person 1%%' AND id > %(id)s "
                                 "ORDER BY id", params={"id": 15})

    assert [r["name"] for r in plain["rows"]] == [f"person {n}" for n in range(10, 20)]
    assert [r["name"] for r in bound["rows"]] == [f"person {n}" for n in range(16, 20)]


def test_a_list_parameter_binds_an_array_or_an_in_list(context, database):
    where = "id = ANY(%(ids)s)" if database == "postgres" else "id IN %(ids)s"

    output = run(context(), query=f"SELECT id FROM people WHERE {where} ORDER BY id", params={"ids": [2, 3, 99]})

    assert output["rows"] == [{"id": 2}, {"id": 3}]
