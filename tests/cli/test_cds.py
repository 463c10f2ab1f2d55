"""`screening cds configure`."""

from sqlalchemy import select

from app.db.engine import make_engine, make_sessionmaker
from app.db.models import AuditEvent, CdsClient
from tests.cli.conftest import Invoke

JWKS = "http://127.0.0.1:9/jwks.json"


def test_configure_creates_then_updates_the_issuer(invoke: Invoke, empty_database_url: str) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    assert (
        invoke("apikey", "create", "--clinic", "Sunrise", "--create-clinic", env=env).exit_code == 0
    )
    args = ("cds", "configure", "--clinic", "Sunrise", "--issuer", "https://ehr.test")
    first = invoke(*args, "--jwks-url", JWKS, env=env)
    assert first.exit_code == 0, first.output
    second = invoke(*args, "--jwks-url", "https://ehr.test/.well-known/jwks.json", env=env)
    assert second.exit_code == 0, second.output
    engine = make_engine(empty_database_url)
    with make_sessionmaker(engine)() as session:
        (client,) = session.scalars(select(CdsClient)).all()
        assert client.jwks_url == "https://ehr.test/.well-known/jwks.json"
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "cds_client.configured")
        ).all()
        assert len(actions) == 2
    engine.dispose()


def test_configure_refuses_an_unknown_clinic_or_a_bad_url(
    invoke: Invoke, empty_database_url: str
) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    base = ("cds", "configure", "--issuer", "https://ehr.test")
    unknown = invoke(*base, "--clinic", "Nowhere", "--jwks-url", JWKS, env=env)
    assert unknown.exit_code == 1
    assert "no clinic called 'Nowhere'" in unknown.stderr
    assert (
        invoke("apikey", "create", "--clinic", "Sunrise", "--create-clinic", env=env).exit_code == 0
    )
    bad = invoke(*base, "--clinic", "Sunrise", "--jwks-url", "file:///etc/passwd", env=env)
    assert bad.exit_code == 1
    assert "--jwks-url" in bad.stderr


def test_link_user_maps_an_ehr_user_to_a_physician(invoke: Invoke, empty_database_url: str) -> None:
    env = {"SCREENING_DATABASE_URL": empty_database_url}
    assert invoke("db", "upgrade", env=env).exit_code == 0
    assert (
        invoke("apikey", "create", "--clinic", "Sunrise", "--create-clinic", env=env).exit_code == 0
    )
    created = invoke("user", "create", "--clinic", "Sunrise", "--email", "dr@sunrise.test",
                     "--role", "physician", env=env)  # fmt: skip
    assert created.exit_code == 0, created.output
    base = ("cds", "configure", "--clinic", "Sunrise", "--issuer", "https://ehr.test")
    assert invoke(*base, "--jwks-url", JWKS, env=env).exit_code == 0
    link = ("cds", "link-user", "--issuer", "https://ehr.test", "--ehr-user", "Practitioner/9")
    linked = invoke(*link, "--email", "dr@sunrise.test", env=env)
    assert linked.exit_code == 0, linked.output
    unknown = invoke(*link, "--email", "nobody@sunrise.test", env=env)
    assert unknown.exit_code == 1
    engine = make_engine(empty_database_url)
    with make_sessionmaker(engine)() as session:
        client = session.scalars(select(CdsClient)).one()
        assert list((client.practitioners or {}).keys()) == ["Practitioner/9"]
    engine.dispose()
