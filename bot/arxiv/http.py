"""The HTTP side of every arXiv request (API and OAI-PMH): one `requests` session whose
adapter waits for the deployment's turn, sets the timeout and User-Agent, checks that a 200
answer is well-formed XML, and retries through urllib3's `Retry`."""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
import urllib3
from lxml import etree
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.arxiv.answers import ArxivFailure, MalformedFeed
from bot.arxiv.pacer import Pacer
from bot.config import Settings

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
BASE_USER_AGENT = "daily-papers-bot/0.1 (chat bot following arXiv keywords"
_warned_no_contact = False


def user_agent(contact: str | None) -> str:
    """A descriptive User-Agent with the operator's contact, as arXiv asks."""
    global _warned_no_contact
    if contact:
        return f"{BASE_USER_AGENT}; {contact})"
    if not _warned_no_contact:
        _warned_no_contact = True
        logger.warning("ARXIV_CONTACT is not set: arXiv asks for a contact in the User-Agent")
    return BASE_USER_AGENT + ")"


class SpacedRetry(Retry):
    """urllib3's `Retry`, never sooner than `gap` seconds after a failed attempt: arXiv's
    spacing holds for retries too, and urllib3 retries a first failure at once."""

    def __init__(self, *args: Any, gap: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gap = gap

    def new(self, **kw: Any) -> SpacedRetry:
        retry = super().new(**kw)
        retry.gap = self.gap
        return retry

    def sleep(self, response: Any = None) -> None:
        start = time.monotonic()
        last = self.history[-1] if self.history else None
        reason = (
            (f"HTTP {last.status}" if last.status else type(last.error).__name__) if last else ""
        )
        logger.warning("arXiv request failed (%s); retrying", reason)
        super().sleep(response)
        rest = self.gap - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)


class PacedAdapter(HTTPAdapter):
    """Every request takes the pacer's turn; its retries happen inside the turn."""

    def __init__(self, pacer: Pacer, settings: Settings) -> None:
        retries = settings.arxiv_retries
        super().__init__(
            max_retries=SpacedRetry(
                total=retries,
                connect=retries,
                read=retries,
                status=retries,
                other=0,
                allowed_methods=frozenset({"GET"}),
                status_forcelist=RETRY_STATUS,
                backoff_factor=settings.arxiv_backoff_seconds,
                respect_retry_after_header=True,
                raise_on_status=False,  # the last answer comes back; its status is reported
                gap=settings.arxiv_delay_seconds,
            )
        )
        self.pacer = pacer
        self.timeout = settings.arxiv_timeout_seconds
        self.user_agent = user_agent(settings.arxiv_contact)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # The documented hook for subclasses; the arxiv client sends its own User-Agent.
        request.headers["User-Agent"] = self.user_agent

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        with self.pacer.turn() as turn:
            try:
                response = super().send(request, *args, **kwargs)
            except requests.RequestException as exc:
                turn.failed(describe(exc))
                raise ArxivFailure(describe(exc)) from exc
            if response.status_code >= 400 and response.status_code != 400:
                turn.failed(f"HTTP {response.status_code}")
            elif response.status_code == 200 and not well_formed(response.content):
                turn.failed("malformed answer")
                raise MalformedFeed("arXiv answered with a malformed feed")
            return response


def describe(exc: requests.RequestException) -> str:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        return "arXiv could not be reached"
    if isinstance(exc, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError):
        return "arXiv did not answer in time"
    return "arXiv could not be reached"


def well_formed(content: bytes) -> bool:
    try:
        etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return False
    return True


def paced_session(settings: Settings, pacer: Pacer) -> requests.Session:
    """The session every arXiv request goes through."""
    session = requests.Session()
    adapter = PacedAdapter(pacer, settings)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = "application/atom+xml"
    return session
