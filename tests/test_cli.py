"""`flask contacts import FILE`: good rows in, bad rows reported by line, re-import updates."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

GOOD = """name,phone,company,email
Ada Example,(415) 555-0100,Example Analytics,ada@example.com
Ben Example,+1 415-555-0102 x77,Example Freight,
"""

MIXED = """name,phone,company,email
Ada Example,(415) 555-0100,Example Analytics,ada@example.com
,(415) 555-0104,No Name Ltd,
Cy Example,not a number,,
Dee Example,(415) 555-0101,,dee-at-example.com
Withheld Row,+266696687,,
Eve Example,+1 (650) 555-0100,,
"""


def contacts(app) -> list[tuple[str, str, str]]:
    from app.db import get_db
    from app.models import DirectoryContact

    with app.app_context():
        with get_db().new_session() as session:
            rows = session.scalars(sa.select(DirectoryContact).order_by(DirectoryContact.name))
            return [(row.name, row.phone_e164, row.company) for row in rows]


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def import_file(runner, tmp_path, text: str, *options: str, encoding="utf-8"):
    path = tmp_path / "contacts.csv"
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return runner.invoke(args=["contacts", "import", str(path), *options])


def test_import_adds_good_rows(app, runner, tmp_path):
    result = import_file(runner, tmp_path, GOOD)

    assert result.exit_code == 0, result.output
    assert contacts(app) == [
        ("Ada Example", "+14155550100", "Example Analytics"),
        ("Ben Example", "+14155550102", "Example Freight"),
    ]


def test_import_prints_summary(app, runner, tmp_path):
    result = import_file(runner, tmp_path, GOOD)

    assert "2 added, 0 updated, 0 rejected" in result.output


def test_import_twice_updates(app, runner, tmp_path):
    import_file(runner, tmp_path, GOOD)

    result = import_file(runner, tmp_path, GOOD.replace("Example Freight", "Example Logistics"))

    assert "0 added, 2 updated, 0 rejected" in result.output
    assert ("Ben Example", "+14155550102", "Example Logistics") in contacts(app)
    assert len(contacts(app)) == 2


def test_import_reports_bad_rows_by_line(app, runner, tmp_path):
    result = import_file(runner, tmp_path, MIXED)

    errors = [line for line in result.stderr.splitlines() if ": line " in line]
    assert [line.split(": ", 1)[1] for line in errors] == [
        "line 3: missing name",
        "line 4: phone 'not a number' is not a valid number (default region US)",
        "line 5: email 'dee-at-example.com' is not an e-mail address",
        "line 6: phone '+266696687' is not a valid number (default region US)",
    ]


def test_import_keeps_good_rows_of_mixed_file(app, runner, tmp_path):
    import_file(runner, tmp_path, MIXED)

    assert [name for name, _, _ in contacts(app)] == ["Ada Example", "Eve Example"]


def test_import_exits_non_zero_on_rejected_rows(app, runner, tmp_path):
    result = import_file(runner, tmp_path, MIXED)

    assert result.exit_code == 1
    assert "2 added, 0 updated, 4 rejected" in result.output


def test_import_missing_column_is_error(app, runner, tmp_path):
    result = import_file(runner, tmp_path, "name,company\nAda Example,Example Analytics\n")

    assert result.exit_code != 0
    assert "the header row has no phone column" in result.output
    assert contacts(app) == []


def test_import_region_option(app, runner, tmp_path):
    result = import_file(runner, tmp_path, "name,phone\nChloé Exemple,06 12 34 56 78\n", "--region", "FR")

    assert result.exit_code == 0, result.output
    assert contacts(app) == [("Chloé Exemple", "+33612345678", None)]


def test_import_reads_excel_bom(app, runner, tmp_path):
    result = import_file(runner, tmp_path, "\ufeff" + GOOD)

    assert result.exit_code == 0, result.output
    assert len(contacts(app)) == 2


def test_import_non_utf8_file_is_error(app, runner, tmp_path):
    result = import_file(runner, tmp_path, "name,phone\nChloé Exemple,+33612345678\n", encoding="latin-1")

    assert result.exit_code != 0
    assert "not UTF-8" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# `flask simulate call`, against a local HTTP server standing in for Callcard


@pytest.fixture
def simulator_app(make_app, httpserver):
    return make_app(PUBLIC_BASE_URL=httpserver.url_for("/").rstrip("/"))


def test_simulate_posts_signed_webhook_to_base_url(simulator_app, httpserver):
    from twilio.request_validator import RequestValidator

    httpserver.expect_request("/webhooks/twilio/voice", method="POST").respond_with_data(
        "<Response/>", content_type="text/xml"
    )

    result = simulator_app.test_cli_runner().invoke(args=["simulate", "call", "+14155550100"])

    assert result.exit_code == 0, result.output
    [(request, _)] = httpserver.log
    signature = request.headers["X-Twilio-Signature"]
    assert RequestValidator(simulator_app.config["TWILIO_AUTH_TOKEN"]).validate(
        httpserver.url_for("/webhooks/twilio/voice"), request.form, signature
    )


def test_simulate_does_not_follow_redirect(simulator_app, httpserver):
    from pytest_httpserver import HTTPServer

    elsewhere = HTTPServer(host="127.0.0.1", port=0)
    elsewhere.start()
    elsewhere.expect_request("/webhooks/twilio/voice").respond_with_data("<Response/>")
    httpserver.expect_request("/webhooks/twilio/voice").respond_with_data(
        "", status=307, headers={"Location": elsewhere.url_for("/webhooks/twilio/voice")}
    )

    result = simulator_app.test_cli_runner().invoke(args=["simulate", "call", "+14155550100"])
    elsewhere.stop()

    assert result.exit_code != 0
    assert "redirected" in result.output
    assert elsewhere.log == []
