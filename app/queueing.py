"""Queued calls: the waiting list, the wait music, leaving the queue, and accepting a call.

A queued caller waits in a Twilio `<Enqueue>`. Callcard keeps its own waiting list
per team in Redis (a sorted set: VIP callers first, then by time of arrival), so any
web process can tell which call an agent who just became free should see next.

An agent accepts a queued call from the console. The first accept wins: a `SET NX`
on the call's key in Redis decides it, so a second agent gets 409 whichever
process serves them. Callcard then redirects that very call out of the queue with
Twilio's REST API (the Calls resource, `Url=` our connect webhook), and that webhook
returns a `<Dial>` of the accepting agent. A `<Dial><Queue>` on the agent's leg would bridge
the caller at the front of the Twilio queue instead, which is not always the call
the agent accepted.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from app import prompts, push
from app.cards import interaction_summary
from app.models import Agent, Interaction
from app.numbers import NumberSettings, get_numbers
from app.presence import Presence
from app.routing import VIP
from app.twilio_api import rest_client

log = logging.getLogger(__name__)

# A VIP caller's score in the waiting list is lowered by this much, so every VIP
# sorts before every other caller (Unix times stay far below it until year 2286).
VIP_HEAD_START_S = 10_000_000_000
# How long an accepted call stays reserved for its agent, and the agent for it.
ACCEPT_TTL_S = 4 * 3600
# Twilio error codes meaning the call is no longer live: 20404 not found, 21220 not in progress.
CALL_GONE_CODES = frozenset({20404, 21220})
# `QueueResult` values after which the caller still needs something to hear.
LEFT_WITHOUT_AGENT = frozenset({"leave", "queue-full", "error", "system-error"})

RELEASE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def waiting_key(team: str) -> str:
    return f"callcard:waiting:{team}"


def accepted_key(call_sid: str) -> str:
    return f"callcard:accepted:{call_sid}"


class AcceptError(Exception):
    """An accept that cannot go through; `status` is the HTTP status of the response."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def redis_client():
    return current_app.extensions["callcard.redis"].client


def now() -> datetime:
    return datetime.now(timezone.utc)


# The waiting list


def add_waiting(team: str, call_sid: str, priority: str, since: float | None = None) -> None:
    """Put the call on the team's waiting list; a Redis failure is logged, the caller still waits in Twilio."""
    score = (since or time.time()) - (VIP_HEAD_START_S if priority == VIP else 0)
    try:
        redis_client().zadd(waiting_key(team), {call_sid: score}, nx=True)
    except Exception:
        log.warning("Call %s: adding to the waiting list of team %s failed", call_sid, team, exc_info=True)


def remove_waiting(team: str | None, call_sid: str) -> None:
    if not team:
        return
    try:
        redis_client().zrem(waiting_key(team), call_sid)
    except Exception:
        log.warning("Call %s: removing from the waiting list of team %s failed", call_sid, team, exc_info=True)


def callers_waiting(team: str, max_age_s: float) -> tuple[int, int]:
    """Return how many VIP callers and how many callers in all wait for `team`.

    Entries older than `max_age_s` are dropped first: their caller has left the
    queue long ago (the queue timeout sends callers to voicemail) without a final
    status reaching us.
    """
    key = waiting_key(team)
    cutoff = time.time() - max_age_s
    pipe = redis_client().pipeline()
    pipe.zremrangebyscore(key, 0, cutoff)
    pipe.zremrangebyscore(key, "-inf", cutoff - VIP_HEAD_START_S)
    pipe.zcount(key, "-inf", "(0")
    pipe.zcard(key)
    _, _, vip, total = pipe.execute()
    return vip, total


def next_waiting(team: str) -> str | None:
    """Return the CallSid that waits first: VIP callers first, then the longest waiting."""
    first = redis_client().zrange(waiting_key(team), 0, 0)
    if not first:
        return None
    return first[0].decode() if isinstance(first[0], bytes) else first[0]


def offer_next(session: Session, agent_id: int) -> str | None:
    """Show a newly free agent the first call of their team's waiting list again, as a `card` event.

    Return the CallSid shown, or None when nobody waits. Errors are logged, never raised.
    """
    try:
        agent = session.get(Agent, agent_id)
        if agent is None or agent.presence != "available":
            return None
        call_sid = next_waiting(agent.team)
        if call_sid is None:
            return None
        interaction = _by_sid(session, call_sid)
        if interaction is None or interaction.card is None:
            remove_waiting(agent.team, call_sid)
            return None
        push.publish([agent_id], "card", {**interaction.card, "routing": interaction.routing}, call_sid)
        return call_sid
    except Exception:
        log.warning("Agent %s: offering the next queued call failed", agent_id, exc_info=True)
        return None


# What the caller hears


def queue_twiml(queue: str) -> str:
    """Return the `<Enqueue>` of `queue` with our wait and action webhooks."""
    from webhooks import twiml
    from webhooks.urls import webhook_url

    return twiml.enqueue(
        queue,
        wait_url=webhook_url("webhooks.voice_queue_wait"),
        action=webhook_url("webhooks.voice_queue_result"),
    )


def wait_twiml(settings: NumberSettings, queue_time_s: int, position: int | None) -> str:
    """Return what a waiting caller hears next, or `<Leave>` once `queue_timeout_s` has passed.

    Twilio fetches the wait URL again whenever its TwiML ends, so the timeout is
    checked at most `QUEUE_ANNOUNCE_S` seconds late, or one music track late
    with `QUEUE_MUSIC_URL`.
    """
    from webhooks import twiml

    config = current_app.config
    if queue_time_s >= settings.queue_timeout_s:
        return twiml.leave_queue()

    messages = [prompts.wait(settings)]
    if position:
        messages.append(prompts.position(settings, position))
    pause_s = min(config["QUEUE_ANNOUNCE_S"], settings.queue_timeout_s - queue_time_s)
    return twiml.queue_wait(
        messages, prompts.say_language(settings.language), music_url=config.get("QUEUE_MUSIC_URL"), pause_s=pause_s
    )


def voicemail_twiml(settings: NumberSettings, before: list[str] | None = None) -> str:
    """Return the voicemail TwiML of the number, or a goodbye when its voicemail is off."""
    from webhooks import twiml
    from webhooks.urls import webhook_url

    language = prompts.say_language(settings.language)
    messages = list(before or [])
    if not settings.voicemail:
        return twiml.say_and_hang_up([*messages, prompts.goodbye(settings)], language)

    return twiml.voicemail(
        [*messages, prompts.voicemail(settings)],
        language,
        max_length_s=settings.voicemail_max_length_s,
        action=webhook_url("webhooks.voice_voicemail_done"),
        recording_callback=webhook_url("webhooks.recording"),
        transcribe=settings.transcribe,
    )


def leave_queue(session: Session, call_sid: str, result: str, queue_time_s: int | None) -> str:
    """Record why the caller left the queue; send one who left without an agent to voicemail."""
    from webhooks import twiml

    interaction = _by_sid(session, call_sid, for_update=True)
    if interaction is None:
        log.warning("Call %s: left queue (%s) but no interaction is stored", call_sid, result)
        session.rollback()
        return twiml.empty()

    routing = dict(interaction.routing or {})
    routing["queue_result"] = result
    if "accepted" not in routing:
        routing["waited_s"] = queue_time_s if queue_time_s is not None else _seconds_since(routing.get("enqueued_at"))
    remove_waiting(routing.get("team"), call_sid)

    answer = twiml.empty()
    if result in LEFT_WITHOUT_AGENT and "accepted" not in routing:
        settings = get_numbers().settings_for(interaction.to_address)
        if settings.voicemail:
            routing["voicemail"] = {"reason": "queue_timeout" if result == "leave" else result}
        answer = voicemail_twiml(settings)
        log.info("Call %s: left queue %s after %s s (%s), voicemail %s",
                 call_sid, routing.get("queue"), routing["waited_s"], result, "on" if settings.voicemail else "off")

    interaction.routing = routing
    session.commit()
    push.publish(routing.get("notified", []), "call.status", {"interaction": interaction_summary(interaction)}, call_sid)
    return answer


# Accepting a queued call


def accept(session: Session, interaction: Interaction, agent: Agent) -> dict:
    """Reserve the queued call for `agent` and redirect it to them; return the routing stored.

    Raises:
        AcceptError: 409 when the call no longer waits, another agent accepted it
            first or the agent is taking another call; 502 when Twilio's API failed.
    """
    call_sid = interaction.provider_sid
    routing = interaction.routing or {}
    _check_waiting(interaction, routing)

    client = redis_client()
    if not client.set(accepted_key(call_sid), agent.id, nx=True, ex=ACCEPT_TTL_S):
        holder = _decode(client.get(accepted_key(call_sid)))
        if holder == str(agent.id):
            return routing
        raise AcceptError(409, f"call {interaction.id} was already accepted by another agent")

    presence = Presence(client)
    if not presence.offer(agent.id, call_sid, ACCEPT_TTL_S):
        _unclaim(call_sid, agent.id)
        raise AcceptError(409, f"you are taking call {presence.offered_call(agent.id)}; end it before accepting another")

    try:
        _redirect_to_agent(call_sid, agent)
    except AcceptError:
        presence.release(agent.id, call_sid)
        _unclaim(call_sid, agent.id)
        raise
    return _record_acceptance(session, interaction, agent)


def _check_waiting(interaction: Interaction, routing: dict) -> None:
    from app.calls import FINAL_CALL_STATUSES

    if interaction.channel != "voice" or routing.get("rule") != "queue":
        raise AcceptError(409, f"interaction {interaction.id} is not a call waiting in a queue")
    if interaction.status in FINAL_CALL_STATUSES or interaction.status == "voicemail":
        raise AcceptError(409, f"call {interaction.id} has ended ({interaction.status})")
    if "queue_result" in routing:
        raise AcceptError(409, f"call {interaction.id} has left the queue ({routing['queue_result']})")


def _redirect_to_agent(call_sid: str, agent: Agent) -> None:
    """Point the queued call at our connect webhook, which dials `agent`."""
    from app.twilio_api import MessagingNotConfigured
    from webhooks.urls import webhook_url

    url = webhook_url("webhooks.voice_connect", agent=agent.id)
    try:
        rest_client(current_app.config).calls(call_sid).update(url=url, method="POST")
    except MessagingNotConfigured as error:
        raise AcceptError(503, f"accepting queued calls needs the Twilio REST API: {error}") from None
    except TwilioRestException as error:
        if error.status == 404 or error.code in CALL_GONE_CODES:
            raise AcceptError(409, f"call {call_sid} has ended: the caller hung up") from None
        log.warning("Call %s: redirecting to agent %s failed: %s", call_sid, agent.id, error, exc_info=True)
        raise AcceptError(502, f"the Twilio API rejected the redirect of call {call_sid}: {error.msg}") from None
    except Exception as error:
        log.warning("Call %s: redirecting to agent %s failed", call_sid, agent.id, exc_info=True)
        raise AcceptError(502, f"the Twilio API could not be reached ({type(error).__name__}); try again") from None


def _record_acceptance(session: Session, interaction: Interaction, agent: Agent) -> dict:
    routing = dict(interaction.routing or {})
    accepted_at = now()
    routing["accepted"] = {"agent_id": agent.id, "at": accepted_at.isoformat()}
    routing["agent_id"] = agent.id
    routing["waited_s"] = _seconds_since(routing.get("enqueued_at"), accepted_at)
    interaction.routing = routing
    interaction.agent_id = agent.id
    session.commit()

    remove_waiting(routing.get("team"), interaction.provider_sid)
    log.info("Call %s: accepted by agent %s after %s s in queue %s",
             interaction.provider_sid, agent.id, routing["waited_s"], routing.get("queue"))
    push.publish(routing.get("notified", []), "call.status",
                 {"interaction": interaction_summary(interaction)}, interaction.provider_sid)
    return routing


def forget_acceptance(call_sid: str) -> None:
    """Let agents accept the call again, e.g. after the accepting agent did not answer."""
    try:
        redis_client().delete(accepted_key(call_sid))
    except Exception:
        log.warning("Call %s: clearing the accepted mark failed", call_sid, exc_info=True)


def _unclaim(call_sid: str, agent_id: int) -> None:
    redis_client().eval(RELEASE_IF_HELD, 1, accepted_key(call_sid), str(agent_id))


def _seconds_since(iso: str | None, until: datetime | None = None) -> int | None:
    if not iso:
        return None
    started = datetime.fromisoformat(iso)
    return max(int(round(((until or now()) - started).total_seconds())), 0)


def _decode(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _by_sid(session: Session, call_sid: str, for_update: bool = False) -> Interaction | None:
    import sqlalchemy as sa

    query = sa.select(Interaction).where(Interaction.provider_sid == call_sid)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)
