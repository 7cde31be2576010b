"""The daily posts' loop: claim what is due, refresh stale keywords once, render and store
the parts per chunk of claims, send each channel's parts (so many channels at once) and record
each as the platform answers. A part whose outcome is unknown is looked for before a resend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlmodel import Session

from bot.arxiv.daily import DailyRefresh, Deployment, default_owner, last_refresh_slot
from bot.posts import claims, digest
from bot.posts.claims import Claim, StoredPart
from bot.posts.digest import DigestOutcome
from bot.posts.poster import Part, Poster, PostFailed
from bot.posts.threads import send_reply, thread_note
from bot.replies import Papers
from bot.storage.db import is_sqlite, write_session

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CONCURRENT_CHANNELS = 500  # channels posting at once; one waiting out a limit holds one
CHUNK = 100  # claims rendered per write transaction
SEND_TIMEOUT_SECONDS = 120.0  # past the platforms' own timeouts and rate-limit waits
READ_BACK_MARGIN = timedelta(minutes=10)  # our clock against the platform's


class DigestRunner:
    """Posts the due daily posts through one `Poster` per platform; `stop()` ends gracefully."""

    def __init__(
        self,
        core: Deployment,
        posters: Sequence[Poster],
        *,
        owner: str | None = None,
        refresher: DailyRefresh | None = None,
        max_concurrent: int = MAX_CONCURRENT_CHANNELS,
        lease_seconds: float = 60.0,
        renew_seconds: float = 20.0,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        self.core = core
        self.posters = {poster.platform: poster for poster in posters}
        self.owner = owner or default_owner()
        self.refresher = refresher or DailyRefresh(core, owner=self.owner)
        self.lease = timedelta(seconds=lease_seconds)
        self.renew_seconds = renew_seconds
        self.send_timeout = send_timeout
        self.unverified = 0  # parts sent again without proof: the platform refused the read-back
        self._slots = asyncio.Semaphore(max_concurrent)
        self._held: set[int] = set()  # our open claims, renewed every `renew_seconds`
        self._sending: set[int] = set()  # claims with a part's request out
        self._threadless: dict[int, str] = {}  # claims whose replies go in the channel
        self._tasks: set[asyncio.Task[DigestOutcome]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False
        # SQLite takes one writer, PostgreSQL a few. Renewals get their own thread: queued
        # behind a morning's writes, a live holder's lease could lapse and another process post.
        self._threads = ThreadPoolExecutor(1 if is_sqlite(core.engine) else 4)
        self._renewals = ThreadPoolExecutor(1, thread_name_prefix="claim-renewals")

    async def run_due(self, now: datetime | None = None) -> list[DigestOutcome]:
        """Post every channel whose time has passed and whose day is unsettled and free;
        returns when each is done. Safe to call at any time, from several processes."""
        if self._stopping:
            return []
        taken, stale = await self._write(self._take, now or self.core.clock())
        taken = [c for c in taken if c.id not in self._held]  # ours already, being posted
        self._held.update(c.id for c in taken)
        if self._held and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.create_task(self._renew())
        outcomes, started = [], {}
        try:
            await self.refresher.refresh_stale(stale)
            for start in range(0, len(taken), CHUNK):
                chunk = taken[start : start + CHUNK]
                prepared = await self._write(claims.prepare, chunk, self._render, **self._me())
                for claim in chunk:
                    parts = prepared[claim.id]
                    if isinstance(parts, str):  # settled: nothing new, or it did not render
                        self._held.discard(claim.id)
                        outcomes.append(
                            DigestOutcome(claim.due.channel_id, claim.due.local_date, parts)
                        )
                        continue
                    await self._slots.acquire()
                    if self._stopping:
                        self._slots.release()
                        break
                    started[claim.id] = self._spawn(self._post(claim, parts))
        finally:
            if not self._stopping:  # claims not started (an error): free for the next pass
                await self._release([c.id for c in taken if c.id not in started])
        done = await asyncio.gather(*started.values(), return_exceptions=True)
        return outcomes + [o for o in done if isinstance(o, DigestOutcome)]

    def _take(self, session: Session, now: datetime) -> tuple[list[Claim], list[str]]:
        """The free claims of the channels due at `now`, and the keywords they find stale."""
        settings, platforms = self.core.settings, self.posters.keys()
        due = digest.due_channels(session, settings=settings, now=now, platforms=platforms)
        taken = claims.take(session, due, owner=self.owner, now=now, lease=self.lease)
        channels = [c.due.channel_id for c in taken]
        since = last_refresh_slot(now, settings.fetch_time)
        return taken, digest.stale_labels(session, channel_ids=channels, since=since)

    def _render(self, claim: Claim, post: Papers) -> list[Part]:
        poster, threads = self.posters[claim.due.platform], claim.due.shape.threads
        return poster.render(post, claim=claim.id, threads=threads)

    async def _post(self, claim: Claim, parts: list[StoredPart]) -> DigestOutcome:
        try:
            status = await self._send_parts(claim, parts)
        except claims.ClaimLost:
            status = "taken"
        except Exception as exc:  # the database, or a poster's bug: try again later
            logger.exception("%s broke", claim)
            status = await self._retry(claim, f"{type(exc).__name__}: {exc}")
        finally:
            self._slots.release()
            self._threadless.pop(claim.id, None)
            if not self._stopping:
                self._held.discard(claim.id)
        return DigestOutcome(claim.due.channel_id, claim.due.local_date, status)

    async def _send_parts(self, claim: Claim, parts: list[StoredPart]) -> str:
        """Look for the parts whose outcome is unknown, then send the others in order. `sent`
        holds the message ids of the parts sent (by us or a holder before us): a reply in a
        thread goes into its parent's, so a restart between them makes no second parent."""
        sent = {p.part.number: p.message_id for p in parts if p.message_id is not None}
        unknown = [p for p in parts if p.status == claims.SENDING]
        if unknown:
            try:
                found = await self._verify(claim, unknown, sent)
            except PostFailed as exc:
                return await self._retry(claim, f"reading the channel back failed: {exc.reason}")
            sent |= found
            parts = [p for p in parts if p not in unknown or p.part.number not in found]
        for part in parts:
            if part.status == claims.SENT:
                continue
            if self._stopping:
                return "stopped"
            self._sending.add(claim.id)
            try:
                if failed := await self._send(claim, part, sent):
                    return failed
            finally:
                self._sending.discard(claim.id)
        note = thread_note(claim, self._threadless)
        await self._write(claims.finish, claim, claims.SENT, **self._me(), **note)
        return "sent"

    async def _verify(
        self, claim: Claim, unknown: list[StoredPart], sent: dict[int, str]
    ) -> dict[int, str]:
        """The unknown parts found in the channel (or their parent's thread), recorded; when
        the platform refuses the read-back, none is: they go again (a duplicate beats a loss)."""
        poster, since = self.posters[claim.due.platform], claim.began - READ_BACK_MARGIN
        threads = sorted({sent[n] for p in unknown if (n := p.part.thread_of) in sent})
        try:
            found = await poster.find(**claim.where, claim=claim.id, since=since, threads=threads)
        except PostFailed as exc:
            if not exc.permanent:
                raise
            self.unverified += len(unknown)
            logger.warning(
                "channel %s refused the read-back (%s): sending %d part(s) again without proof "
                "(%d such parts so far)",
                *(claim.due.channel_id, exc.reason, len(unknown), self.unverified),
            )
            return {}
        for part in unknown:
            if part.part.number in found:
                await self._record(claim, part, found[part.part.number])
        return found

    async def _send(self, claim: Claim, part: StoredPart, sent: dict[int, str]) -> str | None:
        """Mark, send and record one part; the claim's outcome when it cannot go on."""
        parent = part.part.thread_of
        if parent is not None and parent not in sent:  # parts go in order: a bug
            raise RuntimeError(f"part {part.part.number} of {claim}: its parent was not sent")
        await self._write(claims.mark_sending, claim, part, **self._me(), lease=self.lease)
        poster, thread = self.posters[claim.due.platform], sent.get(parent) if parent else None
        try:
            async with asyncio.timeout(self.send_timeout):
                message_id = await send_reply(poster, claim, part.part, thread, self._threadless)
        except TimeoutError:
            return await self._retry(claim, f"no answer in {self.send_timeout:g} s")
        except asyncio.CancelledError:  # the stop's grace ran out: verify after a minute
            await self._retry(claim, "stopped with a part out")
            raise
        except PostFailed as exc:
            if exc.maybe_delivered:  # the part stays "sending": the next attempt looks for it
                return await self._retry(claim, exc.reason)
            await self._write(claims.unmark_sending, part)
            if not exc.permanent:
                return await self._retry(claim, exc.reason)
            return await self._refused(claim, exc.reason)
        await self._record(claim, part, message_id)
        sent[part.part.number] = message_id
        return None

    async def _record(self, claim: Claim, part: StoredPart, message_id: str) -> None:
        now = self.core.clock()
        await self._write(claims.record_sent, claim, part, message_id=message_id, now=now)

    async def _refused(self, claim: Claim, reason: str) -> str:
        """Refused for good: the day fails, and the channel may now be paused."""
        failed = {"reason": reason, "refused": True}
        paused = await self._write(claims.finish, claim, claims.FAILED, **self._me(), **failed)
        now = " and is now paused" if paused else ""
        logger.warning("channel %s refused its post%s: %s", claim.due.channel_id, now, reason)
        return "paused" if paused else "failed"

    async def _retry(self, claim: Claim, reason: str) -> str:
        at = await self._write(claims.retry_later, claim, **self._me(), reason=reason)
        logger.warning("%s goes again at %s: %s", claim, at, reason)
        return "retry"

    async def _renew(self) -> None:
        """Every `renew_seconds`, extend the leases of the claims we hold (a lost one is
        noticed by its sender before its next part)."""
        failing = False
        while self._held:
            await asyncio.sleep(self.renew_seconds)
            held = list(self._held)
            renew = partial(self._in_write, claims.renew, held, **self._me(), lease=self.lease)
            try:
                kept = await asyncio.get_running_loop().run_in_executor(self._renewals, renew)
            except Exception as exc:  # its traceback once an outage, not every 20 s
                logger.warning("renewing our claims' leases failed: %r", exc, exc_info=not failing)
                failing = True
                continue
            failing = False
            self._held -= set(held) - kept

    async def stop(self, grace: float) -> None:
        """Graceful stop: nothing new is claimed or sent, claims not sending are handed back
        at once, parts in flight get `grace` seconds to finish, then their claims go back."""
        self._stopping = True
        await self._release(list(self._held - self._sending))
        running = [t for t in self._tasks if not t.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._release(list(self._held))
        if self._renewer is not None:
            self._renewer.cancel()

    async def _release(self, claim_ids: list[int]) -> None:
        if not claim_ids:
            return
        try:
            await self._write(claims.hand_back, claim_ids, **self._me())
        except Exception:
            logger.exception("handing back %d daily-post claims failed", len(claim_ids))
        self._held.difference_update(claim_ids)

    async def prune(self) -> None:
        """Housekeeping, once a day by the daily refresh's holder: old claims go."""
        pruned = await self._write(claims.prune, now=self.core.clock())
        logger.info("pruned %d daily-post claims", pruned)

    def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        self._threads.shutdown(wait=False)
        self._renewals.shutdown(wait=False)

    def _me(self) -> dict[str, Any]:
        return {"owner": self.owner, "now": self.core.clock()}

    def _spawn(self, work: Coroutine[Any, Any, DigestOutcome]) -> asyncio.Task[DigestOutcome]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task

    async def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(session, *args, **kwargs)` in a write transaction, in a database thread."""
        call = partial(self._in_write, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def _in_write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # Not waiting for PostgreSQL's WAL flush at each commit (ms each, several per part)
        # loses nothing if we die; a database crash at worst sends a part or a paper twice.
        with write_session(self.core.engine, durable=False) as session:
            return fn(session, *args, **kwargs)
