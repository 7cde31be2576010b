"""The database goes away for 20 seconds in the middle of a morning's daily posts, as when
PostgreSQL restarts or fails over: the posting process (a child running the real scheduler and
posters) keeps running, and when the database is back every channel has each part of its post
once and every paper delivered. Between the child and PostgreSQL sits a loopback TCP proxy
that the test cuts: open connections drop, new ones are closed at once."""

from __future__ import annotations

import asyncio
import signal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from bot.storage.db import ensure_schema, make_engine
from tests import fanout
from tests.fakes.discord_server import DiscordStandIn
from tests.fakes.slack_server import SlackWebAPI

OUTAGE_SECONDS = 20.0


class CuttableProxy:
    """127.0.0.1:<port> forwarding to the database; `cut()` drops every connection and
    refuses new ones for `OUTAGE_SECONDS`."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.down_until = 0.0
        self.cuts = 0
        self.refused = 0  # connections tried while it was down
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        self._drop()
        await self._server.wait_closed()

    def cut(self) -> None:
        self.cuts += 1
        self.down_until = asyncio.get_running_loop().time() + OUTAGE_SECONDS
        self._drop()

    def _drop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self.down_until:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


def through(url: str, port: int) -> str:
    """The same database URL, reached through the proxy's port."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))


async def test_a_database_away_for_20_seconds_mid_fan_out_loses_and_repeats_nothing(
    pg_url: str,
) -> None:
    channels = 200
    engine = make_engine(pg_url)
    ensure_schema(engine)
    target = urlsplit(pg_url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    async with SlackWebAPI() as slack, DiscordStandIn(heartbeat_interval_ms=1000) as ds:
        world = fanout.populate(engine, slack, ds, channels)
        taken = 0

        def count(_channel: str, _message: dict[str, Any]) -> None:
            nonlocal taken
            taken += 1
            if taken == world.parts // 3:  # this part is in; its record is still to be written
                proxy.cut()

        slack.after_post = ds.after_post = count
        child = await fanout.spawn(fanout.config(through(pg_url, port), slack, ds, owner="p"))
        try:
            deadline = asyncio.get_running_loop().time() + OUTAGE_SECONDS + 120
            while await asyncio.to_thread(fanout.open_claims, engine) != (0, channels):
                assert child.returncode is None, "the posting process died with the database"
                assert asyncio.get_running_loop().time() < deadline, "the fan-out did not finish"
                await asyncio.sleep(0.5)
        finally:
            child.send_signal(signal.SIGTERM)
            exit_code = await asyncio.wait_for(child.wait(), 30)
            await proxy.close()
        copies, shown = fanout.copies(slack, ds), fanout.shown(slack, ds)
    with engine.connect() as conn:
        delivered = conn.execute(
            text(
                "SELECT c.external_id, d.paper_id FROM deliveries d "
                "JOIN channels c ON c.id = d.channel_id"
            )
        ).all()
    engine.dispose()
    assert proxy.cuts == 1 and proxy.refused > 0  # the child did try while it was away
    assert exit_code == 0
    assert sum(copies.values()) == world.parts and set(copies.values()) == {1}
    expected = {(ch, paper) for ch, papers in world.papers.items() for paper in papers}
    assert set(shown) == expected and set(shown.values()) == {1}
    assert expected <= set(map(tuple, delivered))


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
