"""How simulated users reach the assistant: the pipeline function in-process, the
running server's JSON API, or its chat WebSocket (as the browser does).

Every driver returns turns in the shape of Turn.as_dict() (the API's answer),
so the judge sees the same thing whichever way the turn went. The simulator
runs with database access, so the API driver creates each simulated user's API
token directly, and afterwards moves the stored timestamps of the turns,
sessions, barge-ins and feedback it caused to the simulated clock (the API, like
any client, cannot choose the time of a turn). In-process turns are created at
the simulated time (handle_turn(now=)); only barge-in and feedback rows, whose
time the store sets itself, are moved.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser

from assistant.models import ApiToken, Device
from feedback.models import BargeIn, Feedback, Session, Turn


class DriverError(RuntimeError):
    pass


class Driver(Protocol):
    name: str

    def turn(
        self, user: AbstractBaseUser, text: str, *, device_id: int | None, session_id: int | None, now: datetime
    ) -> dict[str, Any]: ...

    def barge_in(
        self, user: AbstractBaseUser, turn_id: int, offset_words: int, offset_ms: int, now: datetime
    ) -> None: ...

    def feedback(self, user: AbstractBaseUser, turn_id: int, kind: str, now: datetime) -> None: ...

    def known(self, user: AbstractBaseUser) -> dict[str, Any]:
        """What the product says it knows about the user (its "What you've taught me" export)."""
        ...

    def close(self) -> None: ...


class InProcessDriver:
    """Calls handle_turn() and the feedback store directly."""

    name = "inprocess"

    def __init__(self) -> None:
        self._sessions: dict[int, Session] = {}
        self._devices: dict[int, Device] = {}

    def turn(
        self, user: AbstractBaseUser, text: str, *, device_id: int | None, session_id: int | None, now: datetime
    ) -> dict[str, Any]:
        from assistant.pipeline.turn import handle_turn

        device = None
        if device_id is not None:
            device = self._devices.get(device_id) or Device.objects.get(pk=device_id)
            self._devices[device_id] = device
        session = self._sessions.get(session_id) if session_id is not None else None
        turn = handle_turn(user, text=text, device=device, session=session, channel=Session.Channel.SIMULATOR, now=now)
        self._sessions[turn.session_id] = turn.session
        # The judge needs no barge-ins/feedback of a fresh turn: skip as_dict()'s two queries.
        return _turn_fields(turn)

    def barge_in(self, user: AbstractBaseUser, turn_id: int, offset_words: int, offset_ms: int, now: datetime) -> None:
        from feedback.store import record_barge_in

        turn = Turn.objects.get(pk=turn_id)
        row = record_barge_in(turn, offset_words, offset_ms, BargeIn.Source.STOP, user=user)
        BargeIn.objects.filter(pk=row.pk).update(created_at=now)

    def feedback(self, user: AbstractBaseUser, turn_id: int, kind: str, now: datetime) -> None:
        from feedback.store import record_feedback

        turn = Turn.objects.get(pk=turn_id)
        row = record_feedback(turn, user, kind)
        Feedback.objects.filter(pk=row.pk).update(created_at=now)

    def known(self, user: AbstractBaseUser) -> dict[str, Any]:
        from assistant.privacy import export

        return json.loads(json.dumps(export(user, include_turns=False)))

    def close(self) -> None:
        self._sessions.clear()


def _turn_fields(turn: Turn) -> dict[str, Any]:
    return {
        "turn_id": turn.pk,
        "session": turn.session_id,
        "text": turn.raw_text,
        "asr": {"text": turn.asr_text, "confidence": turn.asr_confidence},
        "nlu": {"intent": turn.intent, "slots": turn.slots, "confidence": turn.nlu_confidence},
        "rewrite": turn.rewrite,
        "action": turn.action,
        "response": turn.response,
        "status": turn.status,
        "trace": turn.trace,
    }


class ApiDriver:
    """POSTs to /api/v1/turns and /api/v1/turns/<id>/feedback of a running server."""

    name = "api"

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise DriverError(f"--via api needs an http(s) URL, not {base_url!r}")
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self._tokens: dict[int, str] = {}

    def _token(self, user: AbstractBaseUser) -> str:
        key = self._tokens.get(user.pk)
        if key is None:
            token = ApiToken.objects.filter(user=user).order_by("pk").first() or ApiToken.objects.create(user=user)
            key = self._tokens[user.pk] = token.key
        return key

    def _post(self, user: AbstractBaseUser, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Token {self._token(user)}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode() or "{}")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")[:500]
            raise DriverError(f"POST {path} answered {exc.code}: {body}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise DriverError(f"POST {self.base}{path} failed: {exc}") from None

    def turn(
        self, user: AbstractBaseUser, text: str, *, device_id: int | None, session_id: int | None, now: datetime
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": text}
        if device_id is not None:
            payload["device"] = device_id
        if session_id is not None:
            payload["session"] = session_id
        data = self._post(user, "/api/v1/turns", payload)
        Turn.objects.filter(pk=data["turn_id"]).update(created_at=now)
        if session_id is None:
            Session.objects.filter(pk=data["session"]).update(started_at=now)
        return data

    def barge_in(self, user: AbstractBaseUser, turn_id: int, offset_words: int, offset_ms: int, now: datetime) -> None:
        self._post(
            user,
            f"/api/v1/turns/{turn_id}/feedback",
            {"type": "barge_in", "offset_words": offset_words, "offset_ms": offset_ms},
        )
        # A simulated user barges in at most once per turn: every barge-in of the turn is this one.
        BargeIn.objects.filter(turn_id=turn_id).update(created_at=now)

    def feedback(self, user: AbstractBaseUser, turn_id: int, kind: str, now: datetime) -> None:
        self._post(user, f"/api/v1/turns/{turn_id}/feedback", {"type": kind})
        Feedback.objects.filter(turn_id=turn_id).update(created_at=now)

    def known(self, user: AbstractBaseUser) -> dict[str, Any]:
        return _get_json(self.base + "/api/v1/me", {"Authorization": f"Token {self._token(user)}"}, self.timeout)

    def close(self) -> None:
        self._tokens.clear()


def _get_json(url: str, headers: dict[str, str], timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return json.loads(response.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        raise DriverError(f"GET {url} answered {exc.code}: {exc.read().decode(errors='replace')[:500]}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise DriverError(f"GET {url} failed: {exc}") from None


_NEW_TURN = re.compile(r'<li class="exchange" id="turn-(\d+)"')
_ERROR = re.compile(r'id="chat-error"[^>]*>([^<]+)<')


class WsDriver:
    """Talks to the chat WebSocket like the browser page: say, stop, feedback frames.

    Each simulated user gets a logged-in socket (a Django session created directly,
    since the simulator has database access). A reply streams at the server's
    SPEAKING_RATE_WPS: the driver waits for it to finish before the user's next
    request (otherwise every request would barge in on the last reply), and a
    barge-in is a real Stop frame sent while the reply streams, so the server
    records it. Run the server with a high SPEAKING_RATE_WPS for long simulations.
    """

    name = "ws"

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise DriverError(f"--via ws needs a ws(s):// URL, not {url!r}")
        path = parts.path if parts.path.rstrip("/").endswith("/ws/chat") else "/ws/chat/"
        self.url = f"{parts.scheme}://{parts.netloc}{path}"
        self.origin = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        self.timeout = timeout
        self._sockets: dict[int, Any] = {}
        self._streaming: dict[int, int] = {}  # user id -> turn whose reply is still streaming
        self._open = contextlib.ExitStack()  # every socket, closed together by close()

    def _cookie(self, user: AbstractBaseUser) -> str:
        """A signed-in browser session's cookie for `user` (as if they had logged in)."""
        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.contrib.sessions.backends.db import SessionStore

        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"

    def known(self, user: AbstractBaseUser) -> dict[str, Any]:
        return _get_json(self.origin + "/me/export.json", {"Cookie": self._cookie(user)}, self.timeout)

    def _socket(self, user: AbstractBaseUser) -> Any:
        conn = self._sockets.get(user.pk)
        if conn is None:
            from websockets.sync.client import connect

            try:
                conn = self._open.enter_context(
                    connect(
                        self.url,
                        origin=self.origin,
                        additional_headers={"Cookie": self._cookie(user)},
                        open_timeout=self.timeout,
                    )
                )
            except Exception as exc:
                raise DriverError(f"cannot open {self.url}: {exc}") from None
            self._sockets[user.pk] = conn
        return conn

    def _read_until(self, user: AbstractBaseUser, pattern: re.Pattern[str] | str) -> re.Match[str]:
        conn = self._socket(user)
        pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        while True:
            try:
                frame = conn.recv(timeout=self.timeout)
            except Exception as exc:
                raise DriverError(f"the chat socket failed: {exc}") from None
            frame = frame if isinstance(frame, str) else frame.decode(errors="replace")
            error = _ERROR.search(frame)
            if error and error.group(1).strip():
                raise DriverError(f"the chat socket answered: {error.group(1).strip()}")
            found = pattern.search(frame)
            if found:
                return found

    def _let_reply_finish(self, user: AbstractBaseUser) -> None:
        turn_id = self._streaming.pop(user.pk, None)
        if turn_id is not None:
            self._read_until(user, rf'id="replybox-{turn_id}"')

    def turn(
        self, user: AbstractBaseUser, text: str, *, device_id: int | None, session_id: int | None, now: datetime
    ) -> dict[str, Any]:
        self._let_reply_finish(user)
        self._socket(user).send(json.dumps({"type": "say", "text": text, "device": device_id}))
        turn_id = int(self._read_until(user, _NEW_TURN).group(1))
        self._streaming[user.pk] = turn_id
        turn = Turn.objects.get(pk=turn_id)
        Turn.objects.filter(pk=turn_id).update(created_at=now)
        if not Turn.objects.filter(session_id=turn.session_id, pk__lt=turn_id).exists():
            Session.objects.filter(pk=turn.session_id).update(started_at=now)
        return _turn_fields(turn)

    def barge_in(self, user: AbstractBaseUser, turn_id: int, offset_words: int, offset_ms: int, now: datetime) -> None:
        if self._streaming.get(user.pk) == turn_id:
            self._streaming.pop(user.pk)
            self._socket(user).send(json.dumps({"type": "stop"}))
            # Answered with the Stop button hidden again, whether the reply was cut or had just ended.
            self._read_until(user, 'id="stop-control"')
        # The server stored where its stream was cut; the simulated user decided where they
        # stopped listening, which is what the ground truth is judged on.
        BargeIn.objects.filter(turn_id=turn_id).update(offset_words=offset_words, offset_ms=offset_ms, created_at=now)

    def feedback(self, user: AbstractBaseUser, turn_id: int, kind: str, now: datetime) -> None:
        self._let_reply_finish(user)
        self._socket(user).send(json.dumps({"type": "feedback", "turn_id": turn_id, "kind": kind}))
        self._read_until(user, rf'id="feedback-{turn_id}"')
        Feedback.objects.filter(turn_id=turn_id).update(created_at=now)

    def close(self) -> None:
        self._streaming.clear()
        self._sockets.clear()
        with contextlib.suppress(Exception):  # a broken socket must not fail the report
            self._open.close()


def make_driver(via: str, url: str | None) -> Driver:
    if via == "inprocess":
        return InProcessDriver()
    if via == "api":
        if not url:
            raise DriverError("--via api needs the server's URL, e.g. --via api http://127.0.0.1:8000")
        return ApiDriver(url)
    if via == "ws":
        if not url:
            raise DriverError("--via ws needs the server's URL, e.g. --via ws ws://127.0.0.1:8000/ws/chat/")
        return WsDriver(url)
    raise DriverError(f"unknown driver {via!r}; use inprocess, api or ws")
