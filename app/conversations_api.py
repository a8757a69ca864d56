"""The console's conversation API: send a reply, close a conversation."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from app import conversations, replies
from app.auth import check_csrf, current_agent, login_required
from app.cards import interaction_summary
from app.db import get_db
from app.models import Conversation

bp = Blueprint("conversations_api", __name__, url_prefix="/api/conversations")


@bp.post("/<int:conversation_id>/replies")
@login_required
def create_reply(conversation_id: int):
    """Send `{"body": "...", "media_url": ["https://..."]}` to the conversation's customer."""
    check_csrf()
    agent = current_agent()
    payload = _json_object()
    body = payload.get("body", "")
    if not isinstance(body, str):
        abort(400, description="field body must be a string")
    media_urls = _media_urls(payload.get("media_url", []))

    try:
        interaction = replies.send_reply(conversation_id, agent, body, media_urls)
    except replies.ReplyRejected as error:
        return jsonify(error=error.code, message=error.message), error.status
    return jsonify(interaction=interaction_summary(interaction)), 201


@bp.post("/<int:conversation_id>/close")
@login_required
def close(conversation_id: int):
    """Close a conversation, so that the customer's next message opens a new one."""
    check_csrf()
    agent = current_agent()
    session = get_db().session()
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        abort(404, description=f"conversation {conversation_id} not found")

    conversations.close_conversation(session, conversation, agent.id)
    return jsonify(conversation={"id": conversation.id, "status": conversation.status})


def _json_object() -> dict:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        abort(400, description="the request body must be a JSON object with Content-Type application/json")
    return payload


def _media_urls(value) -> list[str]:
    """Accept one URL or a list of URLs, as Twilio's MediaUrl does."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        abort(400, description="field media_url must be a URL or a list of URLs")
    return [url for url in value if url]
