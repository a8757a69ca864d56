"""Routing of inbound calls by the dialled number's settings, checked on the TwiML Twilio receives."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.numbers import NumbersFileError
from app.presence import Presence
from tests.conftest import Twilio, add_contact, interaction, redis_client, voice_params
from tests.routing.conftest import FRENCH_LINE, NUMBERS, SUPPORT_LINE, online_agent, parse, write_numbers

VOICE = "/webhooks/twilio/voice"
STATUS = "/webhooks/twilio/voice/status"
WAIT = "/webhooks/twilio/voice/queue/wait"
QUEUE_RESULT = "/webhooks/twilio/voice/queue"
CALLER = "+14155550100"


def sid(n: int) -> str:
    return f"CA{n:032x}"


def call(twilio, n: int, to: str = SUPPORT_LINE, from_: str = CALLER):
    return twilio.post(VOICE, voice_params(call_sid=sid(n), from_=from_, To=to))


def answer_and_hang_up(twilio, n: int) -> None:
    for status, sequence in (("in-progress", "1"), ("completed", "2")):
        response = twilio.post(STATUS, {**voice_params(call_sid=sid(n)), "CallStatus": status, "SequenceNumber": sequence,
                                        "CallDuration": "30"})
        assert response.status_code == 204


def queue_params(n: int, to: str = SUPPORT_LINE, **extra) -> dict[str, str]:
    return {**voice_params(call_sid=sid(n), To=to), "QueueSid": "QU" + "0" * 32, **extra}


@pytest.fixture
def twilio(routed_app):
    return Twilio(routed_app.test_client())


# Rules


def test_owner_available_gets_call(routed_app, twilio):
    online_agent(routed_app, "ian@example.com")
    owner_id = online_agent(routed_app, "olga@example.com")
    add_contact(routed_app, "Ada Example", CALLER, owner_email="Olga@example.com")

    root = parse(call(twilio, 1))

    assert root.find("./Dial/Client").text == "olga"
    routing = interaction(routed_app, sid(1)).routing
    assert routing["rule"] == "owner"
    assert routing["agent_id"] == owner_id
    assert routing["candidates"] == [{"rule": "owner", "agent_id": owner_id, "outcome": "offered"}]


def test_owner_busy_goes_to_last_agent(routed_app, twilio):
    add_contact(routed_app, "Ada Example", CALLER, owner_email="olga@example.com")
    lee_id = online_agent(routed_app, "lee@example.com")
    call(twilio, 1)
    answer_and_hang_up(twilio, 1)
    owner_id = online_agent(routed_app, "olga@example.com")
    online_agent(routed_app, "ian@example.com")
    Presence(redis_client(routed_app)).offer(owner_id, sid(99), 60)

    root = parse(call(twilio, 2))

    assert root.find("./Dial/Client").text == "lee"
    routing = interaction(routed_app, sid(2)).routing
    assert routing["rule"] == "last_agent"
    assert routing["candidates"] == [
        {"rule": "owner", "agent_id": owner_id, "outcome": "busy"},
        {"rule": "last_agent", "agent_id": lee_id, "outcome": "offered"},
    ]


def test_owner_offline_goes_to_longest_idle_of_team(routed_app, twilio):
    from tests.conftest import create_agent

    add_contact(routed_app, "Ada Example", CALLER, owner_email="olga@example.com")
    create_agent(routed_app, email="olga@example.com", client_identity="olga")
    online_agent(routed_app, "sam@example.com", team="ventes")
    online_agent(routed_app, "ian@example.com")

    root = parse(call(twilio, 1))

    assert root.find("./Dial/Client").text == "ian"
    assert interaction(routed_app, sid(1)).routing["rule"] == "longest_idle"


def test_rules_follow_configured_order(make_app, tmp_path):
    numbers = {"numbers": {SUPPORT_LINE: {"rules": ["longest_idle", "owner"]}}}
    app = make_app(NUMBERS_FILE=write_numbers(tmp_path, numbers))
    twilio = Twilio(app.test_client())
    online_agent(app, "olga@example.com")
    online_agent(app, "ian@example.com")
    add_contact(app, "Ada Example", CALLER, owner_email="ian@example.com")

    root = parse(call(twilio, 1))

    assert root.find("./Dial/Client").text == "olga"
    assert interaction(app, sid(1)).routing["rule"] == "longest_idle"


# Queue


def test_nobody_available_enqueues_with_wait_url(routed_app, twilio):
    root = parse(call(twilio, 1))

    enqueue = root.find("./Enqueue")
    assert enqueue.text == "support"
    assert enqueue.get("waitUrl") == "http://localhost/webhooks/twilio/voice/queue/wait"
    assert enqueue.get("waitUrlMethod") == "POST"
    assert enqueue.get("action") == "http://localhost/webhooks/twilio/voice/queue"
    routing = interaction(routed_app, sid(1)).routing
    assert routing["rule"] == "queue"
    assert routing["queue"] == "support"
    assert routing["enqueued_at"]


def test_vip_caller_waits_in_vip_queue_first(routed_app, twilio):
    from app import queueing

    add_contact(routed_app, "Vera Important", "+14155550111", tier="gold")
    call(twilio, 1)

    root = parse(call(twilio, 2, from_="+14155550111"))

    assert root.find("./Enqueue").text == "support-vip"
    assert interaction(routed_app, sid(2)).routing["priority"] == "vip"
    with routed_app.app_context():
        assert queueing.next_waiting("support") == sid(2)


def test_queue_wait_says_message_and_position(routed_app, twilio):
    root = parse(twilio.post(WAIT, queue_params(1, QueuePosition="3", QueueTime="10", CurrentQueueSize="4")))

    says = root.findall("./Say")
    assert [say.get("language") for say in says] == ["en-US", "en-US"]
    assert "All our agents are busy" in says[0].text
    assert says[1].text == "You are number 3 in the queue."
    assert root.find("./Pause").get("length") == "30"
    assert root.find("./Play") is None


def test_queue_wait_plays_music_url(make_app, numbers_file):
    app = make_app(NUMBERS_FILE=numbers_file, QUEUE_MUSIC_URL="https://cdn.example.com/hold.mp3")
    twilio = Twilio(app.test_client())

    root = parse(twilio.post(WAIT, queue_params(1, QueuePosition="1", QueueTime="0")))

    assert root.find("./Play").text == "https://cdn.example.com/hold.mp3"
    assert root.find("./Pause") is None


def test_queue_wait_pause_stops_at_timeout(routed_app, twilio):
    root = parse(twilio.post(WAIT, queue_params(1, QueuePosition="1", QueueTime="80")))

    assert root.find("./Pause").get("length") == "10"


def test_queue_timeout_leaves_queue(routed_app, twilio):
    root = parse(twilio.post(WAIT, queue_params(1, QueuePosition="2", QueueTime="90")))

    assert [child.tag for child in root] == ["Leave"]


def test_queue_timeout_records_voicemail(routed_app, twilio):
    call(twilio, 1)

    root = parse(twilio.post(QUEUE_RESULT, queue_params(1, QueueResult="leave", QueueTime="91")))

    assert [child.tag for child in root] == ["Say", "Record"]
    assert root.find("./Say").text == "Please leave a message after the tone, then hang up."
    record = root.find("./Record")
    assert record.get("maxLength") == "75"
    assert record.get("recordingStatusCallback") == "http://localhost/webhooks/twilio/recording"
    assert record.get("recordingStatusCallbackEvent") == "completed"
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == "http://localhost/webhooks/twilio/recording"
    assert record.get("action") == "http://localhost/webhooks/twilio/voice/voicemail"
    routing = interaction(routed_app, sid(1)).routing
    assert routing["voicemail"] == {"reason": "queue_timeout"}
    assert routing["waited_s"] == 91


def test_queue_hangup_answers_nothing(routed_app, twilio):
    call(twilio, 1)

    root = parse(twilio.post(QUEUE_RESULT, queue_params(1, QueueResult="hangup", QueueTime="12")))

    assert list(root) == []
    routing = interaction(routed_app, sid(1)).routing
    assert "voicemail" not in routing
    assert routing["waited_s"] == 12


def test_queue_result_unknown_value_is_400(routed_app, twilio):
    response = twilio.post(QUEUE_RESULT, queue_params(1, QueueResult="teleported"))

    assert response.status_code == 400
    assert "QueueResult" in response.json["message"]


def test_voicemail_off_says_goodbye(make_app, tmp_path):
    numbers = {"numbers": {SUPPORT_LINE: {"voicemail": False}}}
    app = make_app(NUMBERS_FILE=write_numbers(tmp_path, numbers))
    twilio = Twilio(app.test_client())
    call(twilio, 1)

    root = parse(twilio.post(QUEUE_RESULT, queue_params(1, QueueResult="leave", QueueTime="120")))

    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("./Say").text == "Please call again later. Goodbye."


# Business hours


def closed_numbers(tmp_path, hours: dict) -> str:
    entry = {**NUMBERS["numbers"][FRENCH_LINE], "hours": hours}
    return write_numbers(tmp_path, {"numbers": {FRENCH_LINE: entry}})


def test_closed_hours_message_then_voicemail(make_app, tmp_path):
    app = make_app(NUMBERS_FILE=closed_numbers(tmp_path, {"timezone": "Europe/Paris", "weekly": {}}))
    online_agent(app, "sam@example.com", team="ventes")
    twilio = Twilio(app.test_client())

    root = parse(call(twilio, 1, to=FRENCH_LINE))

    assert [child.tag for child in root] == ["Say", "Say", "Record"]
    says = root.findall("./Say")
    assert says[0].text == "Merci de votre appel. Nous sommes actuellement fermés."
    assert says[1].text == "Veuillez laisser un message après le bip sonore, puis raccrocher."
    assert {say.get("language") for say in says} == {"fr-FR"}
    assert root.find("./Record").get("maxLength") == "60"
    routing = interaction(app, sid(1)).routing
    assert routing["rule"] == "closed"
    assert routing["voicemail"] == {"reason": "closed"}
    assert routing["notified"] == []


def test_holiday_is_closed(make_app, tmp_path):
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    every_day = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    hours = {"timezone": "Europe/Paris", "weekly": every_day,
             "holidays": [today.isoformat(), (today + timedelta(days=1)).isoformat()]}
    app = make_app(NUMBERS_FILE=closed_numbers(tmp_path, hours))
    online_agent(app, "sam@example.com", team="ventes")
    twilio = Twilio(app.test_client())

    root = parse(call(twilio, 1, to=FRENCH_LINE))

    assert root.find("./Dial") is None
    assert root.find("./Record") is not None
    assert interaction(app, sid(1)).routing["rule"] == "closed"


def test_configured_closed_message_wins(make_app, tmp_path):
    entry = {**NUMBERS["numbers"][FRENCH_LINE], "hours": {"weekly": {}},
             "messages": {"closed": {"fr": "Nous ouvrons à 9 h."}}}
    app = make_app(NUMBERS_FILE=write_numbers(tmp_path, {"numbers": {FRENCH_LINE: entry}}))
    twilio = Twilio(app.test_client())

    root = parse(call(twilio, 1, to=FRENCH_LINE))

    assert root.find("./Say").text == "Nous ouvrons à 9 h."


def test_french_number_waits_in_french(routed_app, twilio):
    call(twilio, 1, to=FRENCH_LINE)

    root = parse(twilio.post(WAIT, queue_params(1, to=FRENCH_LINE, QueuePosition="2", QueueTime="5")))

    says = root.findall("./Say")
    assert [say.get("language") for say in says] == ["fr-FR", "fr-FR"]
    assert says[0].text == "Merci de votre appel. Tous nos conseillers sont occupés, merci de rester en ligne."
    assert says[1].text == "Vous êtes en position 2 dans la file d'attente."


def test_french_number_open_routes_to_its_team(routed_app, twilio):
    online_agent(routed_app, "ian@example.com")
    online_agent(routed_app, "sam@example.com", team="ventes")

    root = parse(call(twilio, 1, to=FRENCH_LINE))

    assert root.find("./Dial/Client").text == "sam"
    assert interaction(routed_app, sid(1)).routing["team"] == "ventes"


# The numbers file at start-up


def test_invalid_numbers_file_stops_start(make_app, tmp_path):
    path = write_numbers(tmp_path, {"numbers": {SUPPORT_LINE: {"queue_timeout_s": "soon"}}})

    with pytest.raises(NumbersFileError) as error:
        make_app(NUMBERS_FILE=path)

    assert path in str(error.value)
    assert "queue_timeout_s" in str(error.value)


def test_numbers_loaded_once_into_extensions(routed_app):
    directory = routed_app.extensions["callcard.numbers"]

    assert directory.settings_for(FRENCH_LINE).language == "fr"
    assert directory.settings_for(SUPPORT_LINE).queue_timeout_s == 90
