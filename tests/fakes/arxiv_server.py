"""A loopback stand-in for arXiv: the API (``/api/query``) and OAI-PMH (``/oai``), for tests.

``ArxivStandIn`` runs a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a daemon thread.
The API answers the real ``arxiv`` library from Atom entries registered per search phrase;
``id_list`` narrows the answer to the listed papers (with ``search_query``: those of the
phrase's entries, arXiv's "results filter"). OAI-PMH answers ``ListRecords`` in the arXivRaw
format from the entries ``announce``d, in pages of ``oai_page_size`` with resumption tokens,
``noRecordsMatch`` for an empty range and ``badResumptionToken`` for an unknown or expired
token. Faults (HTTP errors with Retry-After, hangs, the 400 error feed, truncated XML, empty
feeds) are scripted per request, API and OAI alike; every request is recorded with its
arrival and end (``requests``), so tests can check pacing across processes.

    with ArxivStandIn() as arxiv_api:
        arxiv_api.load_dailyarxiv()
        arxiv_api.announce([make_entry("2601.00001", title="...")], day=date(2026, 1, 5))
        arxiv_api.script([status(503, retry_after=1), ok()])
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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
ATOM, ARXIV = "http://www.w3.org/2005/Atom", "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
NSMAP = {None: ATOM, "opensearch": OPENSEARCH, "arxiv": ARXIV}
A = f"{{{ATOM}}}"


def slug(phrase: str) -> str:
    """Fixture file slug: lower-cased, runs of other characters replaced by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str | None) -> datetime:
    return datetime.fromisoformat((text or "1970-01-01T00:00:00Z").strip().replace("Z", "+00:00"))


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request: ``kind`` plus keyword ``args``."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


def ok() -> Behaviour:
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
    """HTTP 200 with a valid feed: totalResults 0, no entries (the API only)."""
    return Behaviour("empty")


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
    cats = list(categories) or ["cs.CV"]
    url = f"arxiv.org/abs/{arxiv_id}v{version}"
    parts = [
        f"<id>http://{url}</id><title>{escape(title)}</title>",
        f"<updated>{_stamp(updated or published)}</updated>",
        f'<link href="https://{url}" rel="alternate" type="text/html"/>',
        f'<link href="https://{url.replace("abs", "pdf")}" rel="related" type="application/pdf" title="pdf"/>',
        f"<summary>{escape(summary)}</summary>",
        *(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in cats),
        f"<published>{_stamp(published)}</published>",
        f"<arxiv:comment>{escape(comment)}</arxiv:comment>" if comment is not None else "",
        f'<arxiv:primary_category term="{cats[0]}"/>',
        *(f"<author><name>{escape(name)}</name></author>" for name in authors),
    ]
    return f'<entry xmlns="{ATOM}" xmlns:arxiv="{ARXIV}">{"".join(parts)}</entry>'.encode()


@dataclass(frozen=True)
class StoredEntry:
    """One registered ``<entry>``: its element plus parsed id and dates."""

    element: Any
    entry_id: str  # e.g. http://arxiv.org/abs/2508.04825v2
    updated: datetime
    published: datetime

    @property
    def arxiv_id(self) -> str:
        """Versioned short id, e.g. ``2508.04825v2``."""
        return self.entry_id.rsplit("/abs/", 1)[-1]

    @property
    def short_id(self) -> str:
        return re.sub(r"v\d+$", "", self.arxiv_id)

    @property
    def xml(self) -> bytes:
        return etree.tostring(self.element, encoding="utf-8", with_tail=False)

    def text(self, tag: str) -> str:
        return self.element.findtext(f"{A}{tag}") or ""


def _store(entry: bytes | str | Any) -> StoredEntry:
    if isinstance(entry, str):
        entry = entry.encode()
    if isinstance(entry, bytes):
        entry = etree.fromstring(entry)
    return StoredEntry(
        entry,
        (entry.findtext(f"{A}id") or "").strip(),
        _time(entry.findtext(f"{A}updated")),
        _time(entry.findtext(f"{A}published")),
    )


@dataclass
class RecordedRequest:
    """One request as it arrived; ``status``/``behaviour``/``done`` are set when answered."""

    time: float  # time.monotonic() at arrival
    path: str  # URL path without the query string, e.g. /api/query or /oai
    params: dict[str, str]  # query string, first value per key
    headers: dict[str, str]
    behaviour: str = ""
    status: int | None = None  # None if never answered
    done: float | None = None  # time.monotonic() once the answer was written


_PHRASE = (re.compile(r'\bti:"([^"]*)"'), re.compile(r'"([^"]*)"'), re.compile(r"\bti:(\S+)"))


def _phrase_of(query: str) -> str:
    found = (p.search(query) for p in _PHRASE)
    return next((m.group(1) for m in found if m), query)


def _norm(phrase: str) -> str:
    return " ".join(phrase.split()).casefold()


def _int(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name, "")
    return max(0, int(value)) if value.isdigit() else default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.standin._handle(self)  # type: ignore[attr-defined]


class _Server(ThreadingHTTPServer):
    daemon_threads, block_on_close = True, False

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        self.standin.errors.append(sys.exc_info()[1])  # type: ignore[attr-defined]


class ArxivStandIn:
    """Loopback arXiv API and OAI-PMH server. See module docstring."""

    def __init__(self, oai_page_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._feeds: dict[str, list[StoredEntry]] = {}
        self._announced: list[tuple[date, StoredEntry]] = []
        self._queue: deque[Behaviour] = deque()
        self._mode = ok()
        self._epoch = 0  # tokens of older epochs are expired
        self.oai_page_size = oai_page_size
        self.requests: list[RecordedRequest] = []
        self.arrivals: list[float] = []
        self.errors: list[BaseException | None] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/query"
        self.oai_url = f"http://127.0.0.1:{self.port}/oai"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._closed = False

    def __enter__(self) -> ArxivStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; wakes held (hanging) requests. Idempotent, returns promptly."""
        if not self._closed:
            self._closed = True
            self._closing.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=2)

    # -- content
    def add_entries(self, phrase: str, entries: Iterable[bytes | str | Any]) -> None:
        """Append entries (``make_entry`` bytes, XML text or lxml elements) under ``phrase``."""
        stored = [_store(e) for e in entries]
        with self._lock:
            self._feeds.setdefault(_norm(phrase), []).extend(stored)

    def add_feed(self, phrase: str, path: str | Path) -> None:
        """Register every ``<entry>`` of an Atom file under ``phrase``, in file order."""
        self.add_entries(phrase, etree.parse(str(path)).getroot().findall(f"{A}entry"))

    def load_dailyarxiv(self) -> None:
        """Register the two dailyarxiv fixture feeds under their keywords."""
        for phrase in DAILYARXIV_PHRASES:
            self.add_feed(phrase, DAILYARXIV_FEEDS / f"{slug(phrase)}.atom.xml")

    def entries(self, phrase: str) -> list[StoredEntry]:
        with self._lock:
            return list(self._feeds.get(_norm(phrase), []))

    def announce(self, entries: Iterable[bytes | str | Any], day: date | None = None) -> None:
        """Make entries part of OAI-PMH ``ListRecords`` with datestamp ``day`` (their updated day)."""
        with self._lock:
            self._announced += [(day or e.updated.date(), e) for e in map(_store, entries)]

    def expire_tokens(self) -> None:
        """Every resumption token handed out so far becomes ``badResumptionToken``."""
        with self._lock:
            self._epoch += 1

    # -- fault programming
    def script(self, behaviours: Iterable[Behaviour]) -> None:
        """Queue behaviours, consumed one per request, before the persistent mode applies."""
        with self._lock:
            self._queue.extend(behaviours)

    def always(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._mode = behaviour

    def normal(self) -> None:
        """Drop the scripted queue and the persistent mode: serve normally."""
        with self._lock:
            self._queue.clear()
            self._mode = ok()

    # -- requests
    def _handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        record = RecordedRequest(time.monotonic(), split.path, params, dict(h.headers.items()))
        with self._lock:
            self.requests.append(record)
            self.arrivals.append(record.time)
            behaviour = self._queue.popleft() if self._queue else self._mode
        record.behaviour, kind, args = behaviour.kind, behaviour.kind, behaviour.args
        headers = {"Content-Type": "application/atom+xml; charset=utf-8"}
        if kind == "hang":
            if self._closing.wait(args["seconds"]):
                h.close_connection = True
                return  # closed while held: drop the connection unanswered
            kind = "ok"
        if kind == "status":
            code = int(args["code"])
            body = (args.get("body") or f"{code} stand-in error\n").encode()
            headers = {"Content-Type": "text/plain; charset=utf-8"}
            if args.get("retry_after") is not None:
                headers["Retry-After"] = str(args["retry_after"])
        elif kind == "error400":
            code, body = 400, ERROR_400_FEED.read_bytes()
        elif split.path == "/oai":
            code, body = 200, self._oai(params)
            headers["Content-Type"] = "text/xml; charset=utf-8"
        else:
            code, body = 200, self._feed(params, [], 0) if kind == "empty" else self._answer(params)
        if kind == "malformed":
            body = body[: int(len(body) * float(args.get("fraction", 0.6)))]
        record.status = code
        try:
            h.send_response(code)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout); not a server error
        record.done = time.monotonic()

    def _answer(self, params: dict[str, str]) -> bytes:
        query = params.get("search_query", "")
        ids = {i.strip() for i in params.get("id_list", "").split(",") if i.strip()}
        with self._lock:
            if query:
                matching = list(self._feeds.get(_norm(_phrase_of(query)), []))
            else:  # id_list alone: any known paper
                known = [e for f in self._feeds.values() for e in f] + [
                    e for _, e in self._announced
                ]
                matching = list({e.short_id: e for e in known}.values())
        if ids:
            matching = [e for e in matching if e.short_id in ids or e.arxiv_id in ids]
        by = {"lastUpdatedDate": "updated", "submittedDate": "published"}.get(
            params.get("sortBy", "")
        )
        if by:
            matching.sort(key=lambda e: getattr(e, by), reverse=True)  # stable: ties keep order
        if params.get("sortOrder", "descending") == "ascending":
            matching.reverse()
        start, size = _int(params, "start", 0), _int(params, "max_results", 10)
        return self._feed(params, matching[start : start + size], len(matching))

    def _feed(self, params: dict[str, str], page: list[StoredEntry], total: int) -> bytes:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        head = (
            f'<feed xmlns:opensearch="{OPENSEARCH}" xmlns:arxiv="{ARXIV}" xmlns="{ATOM}">'
            f"<id>https://arxiv.org/api/stand-in-{self.port}</id>"
            f"<title>{escape(f'arXiv Query: {query}')}</title>"
            f"<updated>{_stamp(datetime.now(UTC))}</updated>"
            f'<link href={quoteattr(self.url + "?" + query)} type="application/atom+xml"/>'
            f"<opensearch:itemsPerPage>{_int(params, 'max_results', 10)}</opensearch:itemsPerPage>"
            f"<opensearch:totalResults>{total}</opensearch:totalResults>"
            f"<opensearch:startIndex>{_int(params, 'start', 0)}</opensearch:startIndex>"
        ).encode()
        # Re-home the entries under one root so their repeated xmlns declarations go away.
        root = etree.fromstring(head + b"".join(e.xml for e in page) + b"</feed>")
        etree.cleanup_namespaces(root, top_nsmap=NSMAP)
        etree.indent(root)
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"

    def _oai(self, params: dict[str, str]) -> bytes:
        token = params.get("resumptionToken")
        if params.get("verb") != "ListRecords":
            return _oai_error("badVerb", "only ListRecords here")
        if token is not None:
            parts = token.split("|")
            if set(params) != {"verb", "resumptionToken"}:
                return _oai_error("badArgument", "resumptionToken is an exclusive argument")
            if len(parts) != 3 or parts[0] != str(self._epoch) or not parts[1].isdigit():
                return _oai_error("badResumptionToken", "The resumptionToken supplied is illegal")
            since, offset = parts[2], int(parts[1])
        else:
            since, offset = params.get("from", "0001-01-01"), 0
            if params.get("metadataPrefix") != "arXivRaw" or not re.fullmatch(
                r"\d{4}-\d\d-\d\d", since
            ):
                return _oai_error("badArgument", "from takes a day; metadataPrefix=arXivRaw")
        with self._lock:
            records = [(d, e) for d, e in self._announced if d >= date.fromisoformat(since)]
        if not records:
            return _oai_error("noRecordsMatch", "No records match")
        page = records[offset : offset + self.oai_page_size]
        following = offset + len(page)
        next_token = f"{self._epoch}|{following}|{since}" if following < len(records) else ""
        body = "".join(_raw_record(d, e) for d, e in page)
        size = f'cursor="{offset}" completeListSize="{len(records)}"'
        return _oai_envelope(
            f"<ListRecords>{body}<resumptionToken {size}>{next_token}</resumptionToken></ListRecords>"
        )


def _oai_envelope(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        f"<responseDate>{_stamp(datetime.now(UTC))}</responseDate>"
        f'<request verb="ListRecords">http://export.arxiv.org/oai2</request>{inner}</OAI-PMH>\n'
    ).encode()


def _oai_error(code: str, text: str) -> bytes:
    return _oai_envelope(f'<error code="{code}">{escape(text)}</error>')


def _raw_record(day: date, entry: StoredEntry) -> str:
    """An arXivRaw record, as arXiv's OAI-PMH sends it, of an Atom entry."""
    element = entry.element
    version = int(entry.arxiv_id.rsplit("v", 1)[1])
    cats = " ".join(c.get("term") for c in element.findall(f"{A}category"))
    authors = ", ".join(n.text or "" for n in element.iterfind(f"{A}author/{A}name"))
    versions = "".join(
        f'<version version="v{n}"><date>{entry.updated:%a, %d %b %Y %H:%M:%S} GMT</date></version>'
        for n in range(1, version + 1)
    )
    return (
        f"<record><header><identifier>oai:arXiv.org:{entry.short_id}</identifier>"
        f"<datestamp>{day.isoformat()}</datestamp><setSpec>cs</setSpec></header><metadata>"
        f'<arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/"><id>{entry.short_id}</id>{versions}'
        f"<title>{escape(entry.text('title'))}</title><authors>{escape(authors)}</authors>"
        f"<categories>{cats}</categories><abstract>{escape(entry.text('summary'))}</abstract>"
        "</arXivRaw></metadata></record>"
    )
