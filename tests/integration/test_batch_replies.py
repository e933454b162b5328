"""Kept batch answers expire: the worker's schedule drops them once past the replay window."""

from __future__ import annotations

from datetime import timedelta

from issuance.db.batch_replies import SqlBatchReplies
from issuance.platform import Platform
from issuance.services.batch_ordering import REPLAY_WINDOW
from tests.factories import DEMO


def test_answers_past_the_replay_window_are_forgotten_and_recent_ones_kept(
    platform: Platform,
) -> None:
    replies, now = SqlBatchReplies(platform.engine), platform.clock()
    old, recent = [{"cardId": "c-1", "operationId": "op-1"}], [{"cardId": "c-2"}]
    replies.keep(DEMO, "a" * 64, old, at=now - REPLAY_WINDOW - timedelta(minutes=1))
    replies.keep(DEMO, "b" * 64, recent, at=now - timedelta(minutes=1))
    long_ago = now - timedelta(days=30)

    assert replies.forget(before=now - REPLAY_WINDOW) == 1

    assert replies.find(DEMO, "a" * 64, since=long_ago) is None
    assert replies.find(DEMO, "b" * 64, since=long_ago) == recent
    assert replies.forget(before=now - REPLAY_WINDOW) == 0
