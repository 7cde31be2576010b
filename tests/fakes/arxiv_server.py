"""A loopback stand-in for the arXiv API (``/api/query``), for tests.

``ArxivStandIn`` runs a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a daemon
thread and answers the requests the real ``arxiv`` library sends, from Atom entries
registered per search phrase. Faults (HTTP errors, hangs, the arXiv 400 error feed,
truncated XML, empty feeds) can be scripted per request.

    with ArxivStandIn() as arxiv_api:
        arxiv_api.load_dailyarxiv()
        client = arxiv.Client(page_size=30, delay_seconds=0, num_retries=0)
        client.query_url_format = arxiv_api.url + "?{}"
        arxiv_api.script([status(503), ok()])
        ...
        assert [r.params["start"] for r in arxiv_api.requests] == [...]
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DAILYARXIV_FEEDS = FIXTURES / "dailyarxiv" / "feeds"
ERROR_400_FEED = FIXTURES / "arxiv-api" / "arxiv_error_http400_bad_id.atom.xml"
DAILYARXIV_PHRASES = ("Clothes Changing Person ReID", "Virtual Try-On")

ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ARXIV = "http://arxiv.org/schemas/atom"
NSMAP = {None: ATOM, "opensearch": OPENSEARCH, "arxiv": ARXIV}
CONTENT_TYPE = "application/atom+xml; charset=utf-8"


def slug(phrase: str) -> str:
    """Fixture file slug: lower-cased, runs of other characters replaced by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-")


def _atom_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.min.replace(tzinfo=UTC)
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request: ``kind`` plus keyword ``args``."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


def ok() -> Behaviour:
    """Serve normally."""
    return Behaviour("ok")


def status(code: int, retry_after: int | str | None = None, body: str | None = None) -> Behaviour:
    """Answer HTTP ``code`` with a short text body (and ``Retry-After`` if given)."""
    return Behaviour("status", {"code": code, "retry_after": retry_after, "body": body})


def hang(seconds: float) -> Behaviour:
    """Hold the answer ``seconds`` (woken early by ``close()``), then serve normally."""
    return Behaviour("hang", {"seconds": seconds})


def error400() -> Behaviour:
    """HTTP 400 with the exact bytes of the fixture arXiv error feed."""
    return Behaviour("error400")


def malformed(fraction: float = 0.6) -> Behaviour:
    """HTTP 200 with the first ``fraction`` of the normal answer's bytes (invalid XML)."""
    return Behaviour("malformed", {"fraction": fraction})


def empty() -> Behaviour:
    """HTTP 200 with a valid feed: totalResults 0, no entries."""
    return Behaviour("empty")


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class StoredEntry:
    """One registered ``<entry>``: its serialized bytes plus parsed id and dates."""

    xml: bytes
    entry_id: str  # e.g. http://arxiv.org/abs/2508.04825v2
    updated: datetime
    published: datetime

    @property
    def arxiv_id(self) -> str:
        """Versioned short id, e.g. ``2508.04825v2``."""
        return self.entry_id.rsplit("/abs/", 1)[-1]


def make_entry(
    arxiv_id: str = "2401.00001",
    version: int = 1,
    title: str = "A test paper",
    summary: str = "An abstract.",
    comment: str | None = None,
    authors: Iterable[str] = ("A",),
    updated: datetime | None = None,
    published: datetime | None = None,
    categories: Iterable[str] = ("cs.CV",),
) -> bytes:
    """Serialized arXiv Atom ``<entry>`` shaped like the fixtures' entries."""
    published = published or datetime(2024, 1, 1, tzinfo=UTC)
    updated = updated or published
    categories = list(categories) or ["cs.CV"]
    versioned = f"{arxiv_id}v{version}"
    entry = etree.Element(f"{{{ATOM}}}entry", nsmap={None: ATOM, "arxiv": ARXIV})

    def sub(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        el = etree.SubElement(entry, tag, {k: v for k, v in attrs.items()})
        if text is not None:
            el.text = text
        return el

    sub(f"{{{ATOM}}}id", f"http://arxiv.org/abs/{versioned}")
    sub(f"{{{ATOM}}}title", title)
    sub(f"{{{ATOM}}}updated", _atom_time(updated))
    sub(
        f"{{{ATOM}}}link",
        href=f"https://arxiv.org/abs/{versioned}",
        rel="alternate",
        type="text/html",
    )
    sub(
        f"{{{ATOM}}}link",
        href=f"https://arxiv.org/pdf/{versioned}",
        rel="related",
        type="application/pdf",
        title="pdf",
    )
    sub(f"{{{ATOM}}}summary", summary)
    for term in categories:
        sub(f"{{{ATOM}}}category", term=term, scheme="http://arxiv.org/schemas/atom")
    sub(f"{{{ATOM}}}published", _atom_time(published))
    if comment is not None:
        sub(f"{{{ARXIV}}}comment", comment)
    sub(f"{{{ARXIV}}}primary_category", term=categories[0])
    for name in authors:
        author = sub(f"{{{ATOM}}}author")
        etree.SubElement(author, f"{{{ATOM}}}name").text = name
    etree.indent(entry, space="  ", level=1)
    return etree.tostring(entry, encoding="utf-8")


def _store(entry: etree._Element) -> StoredEntry:
    return StoredEntry(
        xml=etree.tostring(entry, encoding="utf-8", with_tail=False),
        entry_id=(entry.findtext(f"{{{ATOM}}}id") or "").strip(),
        updated=_parse_time(entry.findtext(f"{{{ATOM}}}updated")),
        published=_parse_time(entry.findtext(f"{{{ATOM}}}published")),
    )


# --------------------------------------------------------------------------- recording


@dataclass
class RecordedRequest:
    """One request as it arrived; ``status``/``behaviour`` are filled in when answered."""

    time: float  # time.monotonic() at arrival
    path: str  # URL path without the query string, e.g. /api/query
    params: dict[str, str]  # query string, first value per key
    headers: dict[str, str]
    behaviour: str = ""  # kind of the behaviour applied
    status: int | None = None  # HTTP status sent (None if never answered)


# --------------------------------------------------------------------------- server


_PHRASE_RES = (
    re.compile(r'\bti:"([^"]*)"'),
    re.compile(r'"([^"]*)"'),
    re.compile(r"\bti:(\S+)"),
)


def _phrase_of(search_query: str) -> str:
    for pattern in _PHRASE_RES:
        m = pattern.search(search_query)
        if m:
            return m.group(1)
    return search_query


def _norm(phrase: str) -> str:
    return " ".join(phrase.split()).casefold()


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        return max(0, int(params.get(name, default)))
    except ValueError:
        return default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.standin._handle(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    standin: ArxivStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        self.standin.errors.append(sys.exc_info()[1])


class ArxivStandIn:
    """Loopback arXiv API server for the real ``arxiv`` client. See module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._feeds: dict[str, tuple[str, list[StoredEntry]]] = {}
        self._queue: deque[Behaviour] = deque()
        self._mode: Behaviour = ok()
        self.requests: list[RecordedRequest] = []
        self.arrivals: list[float] = []
        self.errors: list[BaseException | None] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/query"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ArxivStandIn:{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    # -- lifecycle
    def __enter__(self) -> ArxivStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; wakes held (hanging) requests. Idempotent, returns promptly."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)

    # -- content
    def add_entries(self, phrase: str, entries: Iterable[bytes | str | etree._Element]) -> None:
        """Append entries (``make_entry`` bytes, XML text or lxml elements) under ``phrase``."""
        stored = []
        for entry in entries:
            if isinstance(entry, str):
                entry = entry.encode("utf-8")
            if isinstance(entry, (bytes, bytearray)):
                entry = etree.fromstring(bytes(entry))
            stored.append(_store(entry))
        with self._lock:
            self._feeds.setdefault(_norm(phrase), (phrase, []))[1].extend(stored)

    def add_feed(self, phrase: str, path: str | Path) -> None:
        """Register every ``<entry>`` of an Atom file under ``phrase``, in file order."""
        root = etree.parse(str(path)).getroot()
        self.add_entries(phrase, root.findall(f"{{{ATOM}}}entry"))

    def load_dailyarxiv(self) -> None:
        """Register the two dailyarxiv fixture feeds under their keywords."""
        for phrase in DAILYARXIV_PHRASES:
            self.add_feed(phrase, DAILYARXIV_FEEDS / f"{slug(phrase)}.atom.xml")

    def entries(self, phrase: str) -> list[StoredEntry]:
        """Entries registered under ``phrase`` (case-insensitive), in stored order."""
        with self._lock:
            return list(self._feeds.get(_norm(phrase), ("", []))[1])

    # -- fault programming
    def script(self, behaviours: Iterable[Behaviour]) -> None:
        """Queue behaviours, consumed one per request, before the persistent mode applies."""
        with self._lock:
            self._queue.extend(behaviours)

    def always(self, behaviour: Behaviour) -> None:
        """Apply ``behaviour`` to every request not covered by the script."""
        with self._lock:
            self._mode = behaviour

    def normal(self) -> None:
        """Drop the scripted queue and the persistent mode: serve normally."""
        with self._lock:
            self._queue.clear()
            self._mode = ok()

    # -- request handling
    def _handle(self, h: _Handler) -> None:
        arrived = time.monotonic()
        split = urlsplit(h.path)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        record = RecordedRequest(arrived, split.path, params, dict(h.headers.items()))
        with self._lock:
            self.requests.append(record)
            self.arrivals.append(arrived)
            behaviour = self._queue.popleft() if self._queue else self._mode
        record.behaviour = behaviour.kind

        kind, args = behaviour.kind, behaviour.args
        headers: dict[str, str] = {"Content-Type": CONTENT_TYPE}
        if kind == "hang":
            if self._closing.wait(args["seconds"]):
                h.close_connection = True
                return  # closed while held: drop the connection unanswered
            kind = "ok"
        if kind == "status":
            code = int(args["code"])
            body = (args.get("body") or f"{code} stand-in error\n").encode("utf-8")
            headers = {"Content-Type": "text/plain; charset=utf-8"}
            if args.get("retry_after") is not None:
                headers["Retry-After"] = str(args["retry_after"])
        elif kind == "error400":
            code, body = 400, ERROR_400_FEED.read_bytes()
        elif kind == "empty":
            code, body = 200, self._feed(params, [], 0)
        elif kind in ("ok", "malformed"):
            code, body = 200, self._answer(params)
            if kind == "malformed":
                body = body[: int(len(body) * float(args.get("fraction", 0.6)))]
        else:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        record.status = code
        try:
            h.send_response(code)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout); not a server error

    def _answer(self, params: dict[str, str]) -> bytes:
        phrase = _phrase_of(params.get("search_query", ""))
        with self._lock:
            matching = list(self._feeds.get(_norm(phrase), ("", []))[1])
        sort_by = params.get("sortBy", "relevance")
        if sort_by == "lastUpdatedDate":
            matching.sort(key=lambda e: e.updated, reverse=True)  # stable: ties keep stored order
        elif sort_by == "submittedDate":
            matching.sort(key=lambda e: e.published, reverse=True)
        if params.get("sortOrder", "descending") == "ascending":
            matching.reverse()
        start = _int_param(params, "start", 0)
        max_results = _int_param(params, "max_results", 10)
        return self._feed(params, matching[start : start + max_results], len(matching))

    def _feed(self, params: dict[str, str], page: list[StoredEntry], total: int) -> bytes:
        start = _int_param(params, "start", 0)
        max_results = _int_param(params, "max_results", 10)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        head = (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            f'<feed xmlns:opensearch="{OPENSEARCH}" xmlns:arxiv="{ARXIV}" xmlns="{ATOM}">\n'
            f"  <id>https://arxiv.org/api/stand-in-{self.port}</id>\n"
            f"  <title>{escape(f'arXiv Query: {query}')}</title>\n"
            f"  <updated>{_atom_time(datetime.now(UTC))}</updated>\n"
            f'  <link href={quoteattr(self.url + "?" + query)} type="application/atom+xml"/>\n'
            f"  <opensearch:itemsPerPage>{max_results}</opensearch:itemsPerPage>\n"
            f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
            f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
        ).encode()
        if not page:
            return head + b"</feed>\n"
        # Re-home the entries under one root so their repeated xmlns declarations go away.
        body = b"  " + b"\n  ".join(e.xml for e in page) + b"\n</feed>"
        root = etree.fromstring(head + body)
        etree.cleanup_namespaces(root, top_nsmap=NSMAP)
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
