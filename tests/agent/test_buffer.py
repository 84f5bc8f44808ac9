"""The disk buffer: batches come back oldest first and survive a restart; a half-written
file is dropped without harm to the rest; a damaged one is set aside; the cap drops the
oldest batches; one agent per directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from neocloud.metering.agent.buffer import BufferBusy, DiskBuffer


def batch(tag: str, n: int) -> bytes:
    return json.dumps([{"id": f"{tag}-{i}"} for i in range(n)]).encode()


def ids(payload: bytes | None) -> list[str]:
    assert payload is not None
    return [e["id"] for e in json.loads(payload)]


def test_batches_come_back_oldest_first_across_a_restart(tmp_path: Path) -> None:
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        for tag in "abc":
            buf.append(batch(tag, 2), 2)
        assert (buf.batches, buf.samples) == (3, 6)
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        assert [ids(buf.read(e)) for e in buf.entries] == [
            ["a-0", "a-1"],
            ["b-0", "b-1"],
            ["c-0", "c-1"],
        ]
        buf.remove(buf.entries[:1])
        buf.append(batch("d", 1), 1)
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        assert [ids(buf.read(e))[0] for e in buf.entries] == ["b-0", "c-0", "d-0"]
        assert buf.entries[-1].seq > buf.entries[0].seq


def test_a_half_written_file_is_dropped_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        buf.append(batch("a", 2), 2)
        name = buf.entries[0].name
    # What a kill during the next append leaves: its temporary file, cut short.
    (tmp_path / "0000000000000002-2.json.tmp").write_bytes(batch("b", 2)[:9])
    with caplog.at_level(logging.WARNING), DiskBuffer(tmp_path, 1 << 20) as buf:
        assert [e.name for e in buf.entries] == [name]
        assert ids(buf.read(buf.entries[0])) == ["a-0", "a-1"]
        buf.append(batch("c", 1), 1)
        assert [e.seq for e in buf.entries] == [1, 2]
    assert not list(tmp_path.glob("*.tmp"))
    assert "half-written" in caplog.text


def test_a_damaged_file_is_set_aside_and_the_others_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        for tag in "abc":
            buf.append(batch(tag, 2), 2)
        damaged = buf.entries[1]
    (tmp_path / damaged.name).write_bytes(b'[{"id": "b-0"}, {"i')
    with caplog.at_level(logging.WARNING), DiskBuffer(tmp_path, 1 << 20) as buf:
        got = [buf.read(e) for e in buf.entries]
        assert got[1] is None and ids(got[0]) == ["a-0", "a-1"] and ids(got[2]) == ["c-0", "c-1"]
        assert buf.batches == 2
    assert (tmp_path / (damaged.name + ".bad")).exists()
    assert "damaged" in caplog.text


def test_over_the_cap_the_oldest_batches_are_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(batch("a", 10))
    with caplog.at_level(logging.WARNING), DiskBuffer(tmp_path, 3 * size) as buf:
        for tag in "abcde":
            buf.append(batch(tag, 10), 10)
        assert [ids(buf.read(e))[0] for e in buf.entries] == ["c-0", "d-0", "e-0"]
        assert (buf.dropped_batches, buf.dropped_samples) == (2, 20)
        assert buf.size <= 3 * size
        # A batch larger than the whole cap is still kept (alone).
        buf.append(batch("f", 100), 100)
        assert [ids(buf.read(e))[0] for e in buf.entries] == ["f-0"]
    assert caplog.text.count("dropped the oldest batch") == 5
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_groups_join_batches_up_to_the_limits(tmp_path: Path) -> None:
    with DiskBuffer(tmp_path, 1 << 20) as buf:
        for tag in "abcdef":
            buf.append(batch(tag, 4), 4)
        assert [len(g) for g in buf.groups(max_events=10)] == [2, 2, 2]
        one = len(batch("a", 4))
        assert [len(g) for g in buf.groups(max_bytes=3 * one)] == [3, 3]
        assert [len(g) for g in buf.groups(max_events=1)] == [1] * 6


def test_one_agent_per_directory(tmp_path: Path) -> None:
    with DiskBuffer(tmp_path, 1 << 20), pytest.raises(BufferBusy, match="another agent"):
        DiskBuffer(tmp_path, 1 << 20)
    with DiskBuffer(tmp_path, 1 << 20):  # released on close
        pass
