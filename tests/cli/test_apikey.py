"""`screening apikey create`."""

from sqlalchemy import select

from app.apikey import service as apikey_service
from app.db.engine import make_engine, make_sessionmaker
from app.db.models import ApiKey, Clinic
from tests.cli.conftest import Invoke


def test_create_prints_key_alone_on_last_line_and_stores_its_hash(
    invoke: Invoke, empty_database_url: str
) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    result = invoke(
        "apikey", "create", "--create-clinic", "--clinic", "Sunrise Pain Clinic", env=env
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[-1]
    assert key.startswith("sk_")
    assert len(key) == 46
    assert "Sunrise Pain Clinic" in result.stderr
    again = invoke(
        "apikey",
        "create",
        "--clinic",
        "Sunrise Pain Clinic",
        "--scopes",
        "screenings:read",
        env=env,
    )
    assert again.exit_code == 0, again.output
    engine = make_engine(empty_database_url)
    with make_sessionmaker(engine)() as session:
        assert len(session.scalars(select(Clinic)).all()) == 1
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        hashes = {row.key_hash for row in rows}
        assert apikey_service.hash_key(key) in hashes
        assert key not in hashes
        assert sorted(map(len, (row.scopes for row in rows))) == [1, 3]
    engine.dispose()


def test_unknown_scope_is_a_usage_error(invoke: Invoke, empty_database_url: str) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    invoke("db", "upgrade", env=env)
    result = invoke(
        "apikey", "create", "--create-clinic", "--clinic", "A", "--scopes", "admin:all", env=env
    )
    assert result.exit_code == 2
    assert "admin:all" in result.stderr
    assert result.stdout == ""


def test_audit_read_is_granted_only_when_asked_for(invoke: Invoke, empty_database_url: str) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    invoke("db", "upgrade", env=env)
    for scopes in ("audit:read,screenings:read", None):
        extra = () if scopes is None else ("--scopes", scopes)
        result = invoke("apikey", "create", "--create-clinic", "--clinic", "A", *extra, env=env)
        assert result.exit_code == 0, result.output
    engine = make_engine(empty_database_url)
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        assert [row.scopes for row in rows] == [
            ["audit:read", "screenings:read"],
            list(apikey_service.DEFAULT_SCOPES),
        ]
    engine.dispose()


def test_create_refuses_an_unmigrated_database(invoke: Invoke) -> None:
    result = invoke("apikey", "create", "--clinic", "A")
    assert result.exit_code == 1
    assert "screening db upgrade" in result.stderr


def test_create_refuses_an_unknown_clinic_and_suggests_the_closest(
    invoke: Invoke, empty_database_url: str
) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    made = invoke("apikey", "create", "--create-clinic", "--clinic", "Demo clinic", env=env)
    assert made.exit_code == 0, made.output
    typo = invoke("apikey", "create", "--clinic", "Demo Clinic", env=env)
    assert typo.exit_code == 2
    assert 'no clinic is named "Demo Clinic". Did you mean "Demo clinic"?' in typo.stderr
    assert "--create-clinic" in typo.stderr
    assert typo.stdout == ""
    again = invoke("apikey", "create", "--clinic", "Demo clinic", env=env)
    assert again.exit_code == 0, again.output
