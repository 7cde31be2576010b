"""The daily post's new shapes (threads, weekly, max, styles) on the unhappy path, as an
operator lives it: a thread that refuses its replies, a weekly schedule changed in the middle
of its week, a post cut by `max`. Whenever the choice is a duplicate or a loss, the papers
show twice rather than never."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bot.commands.core import Core
from bot.commands.grammar import parse
from bot.posts.poster import Part, PostFailed
from bot.replies import KeywordTable
from tests.fakes.arxiv_server import ArxivStandIn
from tests.support.digest import (
    SLACK,
    FakePoster,
    add_paper,
    channel_of,
    delivered,
    follow,
    run_at,
    statuses,
    utc,
)

REFUSAL = (
    "Discord refused the thread: 403 Missing Permissions (the bot needs Create Public Threads)"
)


@dataclass
class ThreadRefusingPoster(FakePoster):
    """A platform whose threads refuse replies (`thread_refusal`); the channel takes them."""

    thread_refusal: str | None = REFUSAL

    async def send(
        self, *, workspace: str, channel: str, part: Part, thread: str | None = None
    ) -> str:
        if thread is not None and self.thread_refusal is not None:
            self.attempts.append(channel)
            raise PostFailed(self.thread_refusal, permanent=True, thread_gone=True)
        if thread is None:  # a reply sent into the channel itself
            part = replace(part, thread_of=None)
        return await super().send(workspace=workspace, channel=channel, part=part, thread=thread)


def _threaded(core: Core, arxiv_api: ArxivStandIn, time_machine: Any) -> set[str]:
    """C1 with threads on and three new papers in two keywords; the papers it had before."""
    time_machine.move_to(utc(2026, 3, 2, 8), tick=False)
    follow(core, arxiv_api, SLACK, "Diffusion")
    follow(core, arxiv_api, SLACK, "Retrieval")
    core.execute(SLACK, parse("digest threads on"))
    old = delivered(core, SLACK)
    add_paper(core, "Diffusion", "2603.00001", utc(2026, 3, 2, 6))
    add_paper(core, "Diffusion", "2603.00002", utc(2026, 3, 2, 7))
    add_paper(core, "Retrieval", "2603.00003", utc(2026, 3, 2, 7))
    return old


def _schedule_line(core: Core) -> str:
    (table, *_) = core.execute(SLACK, parse("keywords"))
    assert isinstance(table, KeywordTable)
    return table.digest


# -- threads that refuse their replies ------------------------------------------------------


async def test_replies_a_thread_refuses_go_into_the_channel_and_keywords_says_why(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    old = _threaded(core, arxiv_api, time_machine)
    poster = ThreadRefusingPoster()
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["sent"]
    # The parent, then each reply in the channel itself; the thread is asked once only.
    assert [(m.part, m.thread) for m in poster.messages] == [(1, None), (2, None), (3, None)]
    assert poster.to("C1") == [[], ["2603.00002", "2603.00001"], ["2603.00003"]]
    assert len(poster.attempts) == 4
    assert delivered(core, SLACK) - old == {"2603.00001", "2603.00002", "2603.00003"}
    channel = channel_of(core, SLACK)
    assert (channel.paused, channel.failed_days) == (False, 0)
    line = _schedule_line(core)
    assert "threads (refused, so the papers went into the channel" in line
    assert "Missing Permissions" in line

    # Permission granted: the next post threads again, and the note goes.
    add_paper(core, "Diffusion", "2603.00004", utc(2026, 3, 3, 6))
    poster.thread_refusal = None
    await run_at(core, [poster], utc(2026, 3, 3, 9), time_machine)
    assert [(m.part, m.thread) for m in poster.messages[3:]] == [(1, None), (2, "m4")]
    assert _schedule_line(core) == "Daily post at 09:00 UTC · threads."


async def test_typing_digest_threads_again_clears_the_note(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    _threaded(core, arxiv_api, time_machine)
    await run_at(core, [ThreadRefusingPoster()], utc(2026, 3, 2, 9), time_machine)
    assert "refused" in _schedule_line(core)
    core.execute(SLACK, parse("digest threads on"))
    assert _schedule_line(core) == "Daily post at 09:00 UTC · threads."


async def test_a_channel_that_refuses_too_fails_the_day_as_any_refusal(
    core: Core, arxiv_api: ArxivStandIn, time_machine: Any
) -> None:
    old = _threaded(core, arxiv_api, time_machine)
    gone = PostFailed("Discord refused: 403 Missing Access", permanent=True)
    poster = ThreadRefusingPoster(script={"C1": ["ok", gone]})
    assert statuses(await run_at(core, [poster], utc(2026, 3, 2, 9), time_machine)) == ["failed"]
    assert delivered(core, SLACK) == old  # nothing lost: the papers wait for the next post
    assert channel_of(core, SLACK).failed_days == 1
