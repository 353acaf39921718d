"""Binance's U/u rule (services/depth_sequence.py), as web-socket-streams.md states it."""

from __future__ import annotations

from services.depth_sequence import DepthSequence, Step


def test_the_first_diff_after_a_snapshot_may_start_before_it_and_must_reach_it():
    sequence = DepthSequence()
    sequence.snapshot(100)
    assert sequence.step(90, 100) is Step.OLD  # u <= lastUpdateId: already in the snapshot
    assert sequence.step(95, 103) is Step.NEXT  # U <= lastUpdateId + 1 <= u
    assert sequence.step(102, 103) is Step.GAP  # 101 is missing


def test_after_the_first_diff_each_one_starts_where_the_last_ended():
    sequence = DepthSequence(100)
    assert sequence.step(101, 104) is Step.NEXT
    sequence.advance(104)
    assert sequence.step(103, 106) is Step.GAP  # overlaps: not U == previous u + 1
    assert sequence.step(106, 106) is Step.GAP
    assert sequence.step(105, 105) is Step.NEXT
    assert sequence.step(100, 104) is Step.OLD


def test_a_lost_sequence_waits_for_a_snapshot():
    sequence = DepthSequence(7)
    sequence.lose()
    assert not sequence.synced
    sequence.snapshot(20)
    assert sequence.synced and sequence.step(15, 21) is Step.NEXT
