"""The French catalog: complete, compiled, and used for the console and caller messages."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = pathlib.Path(__file__).resolve().parents[2]
CATALOG = ROOT / "app" / "translations" / "fr" / "LC_MESSAGES"


def catalog_pairs(catalog) -> dict:
    return {message.id: message.string for message in catalog if message.id}


def test_committed_mo_matches_po(tmp_path):
    with open(CATALOG / "messages.po", "rb") as handle:
        source = read_po(handle, locale="fr")
    compiled_path = tmp_path / "messages.mo"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "compile", "-i", str(CATALOG / "messages.po"),
         "-o", str(compiled_path), "-l", "fr"],
        check=True, capture_output=True,
    )

    with open(CATALOG / "messages.mo", "rb") as handle:
        committed = read_mo(handle)
    with open(compiled_path, "rb") as handle:
        fresh = read_mo(handle)

    assert catalog_pairs(committed) == catalog_pairs(fresh), "messages.mo is stale; run pybabel compile -d app/translations"
    assert catalog_pairs(committed) == {key: value for key, value in catalog_pairs(source).items() if value}


def test_every_message_translated():
    with open(CATALOG / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale="fr")

    untranslated = [message.id for message in catalog if message.id and not message.string]
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]

    assert untranslated == []
    assert fuzzy == []


def test_catalog_has_every_string_in_code(tmp_path):
    template = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(ROOT / "babel.cfg"),
         "-k", "_l", "-k", "lazy_gettext", "-o", str(template), str(ROOT)],
        check=True, capture_output=True, cwd=ROOT,
    )
    with open(template, "rb") as handle:
        extracted = {message.id for message in read_po(handle) if message.id}
    with open(CATALOG / "messages.po", "rb") as handle:
        translated = {message.id for message in read_po(handle, locale="fr") if message.string}

    missing = sorted(extracted - translated)
    assert missing == [], "strings without a French translation; update the catalog as babel.cfg describes"


def test_console_french_for_french_browser(app, make_console):
    console = make_console()

    page = console.client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})

    html = page.get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Se déconnecter" in html
    assert "Rappel nécessaire" in html


def test_console_english_for_english_browser(app, make_console):
    console = make_console()

    html = console.client.get("/", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)

    assert '<html lang="en">' in html
    assert "Sign out" in html


def test_agent_language_wins_over_browser(app, make_console):
    console = make_console(language="fr")

    html = console.client.get("/", headers={"Accept-Language": "en-US"}).get_data(as_text=True)

    assert '<html lang="fr">' in html
