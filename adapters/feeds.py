"""GET /feeds/<token>.atom on the shared listener: a channel's private Atom feed, with ETag and
Last-Modified and 304 for a reader that has it already. Any token the store does not know gets
aiohttp's own 404, exactly as any other unknown path does."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from bot.commands import feeds
from bot.commands.core import Core
from bot.commands.feeds import FeedDocument

PATH = "/feeds/{token}.atom"
ATOM = "application/atom+xml"
# Feed readers poll; their reads run in threads of their own, so that a burst of them never
# queues /healthz or the commands behind it.
READER_THREADS = 2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def mount(app: web.Application, core: Core) -> None:
    """Serve the feeds from `app` (the listener that also serves /healthz and Slack)."""
    pool = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="papers-feed")

    async def close_pool(_app: web.Application) -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(close_pool)
    app.router.add_get(PATH, feed_handler(core, pool))


def feed_handler(core: Core, pool: ThreadPoolExecutor) -> Handler:
    async def feed(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        read = functools.partial(feeds.document, core, request.match_info["token"])
        document = await loop.run_in_executor(pool, read)
        if document is None:  # unknown or reset: nothing said about which
            raise web.HTTPNotFound()
        if is_current(request, document):
            return _headed(web.Response(status=304), document)
        body = await loop.run_in_executor(pool, document.body)  # feedgen: off the loop too
        return _headed(web.Response(body=body, content_type=ATOM, charset="utf-8"), document)

    return feed


def is_current(request: web.Request, document: FeedDocument) -> bool:
    """The reader's copy is current: If-None-Match decides when the reader sent one,
    If-Modified-Since otherwise (RFC 9110)."""
    tags = request.if_none_match
    if tags is not None:
        return any(tag.value in (document.etag, "*") for tag in tags)
    since = request.if_modified_since
    return since is not None and document.last_modified <= since


def _headed(response: web.Response, document: FeedDocument) -> web.Response:
    response.etag = document.etag
    response.last_modified = document.last_modified
    # The URL is a capability: no shared cache keeps a copy, no search engine lists it.
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
