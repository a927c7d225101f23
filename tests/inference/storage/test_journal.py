import uuid

from spoton_inference.storage.journal import Batch, Journal


def _batch(n: int, start: int = 0) -> Batch:
    return Batch(uuid.uuid4(), [(i, f"row-{i}", None, 1.5) for i in range(start, start + n)])


def test_batches_come_back_in_order_and_acknowledged_ones_stay_gone_across_reopen(tmp_path):
    path = tmp_path / "j" / "track_points.journal"
    journal = Journal(path, max_bytes=1 << 20)
    journal.open()
    batches = [_batch(3, 0), _batch(2, 3), _batch(4, 5)]
    assert all(journal.append(b) for b in batches)
    assert (journal.batches, journal.rows) == (3, 9)
    assert journal.head() == batches[0]
    journal.ack()
    journal.close()

    reopened = Journal(path, max_bytes=1 << 20)
    reopened.open()
    assert (reopened.batches, reopened.rows) == (2, 6)
    assert reopened.head() == batches[1]
    reopened.ack()
    assert reopened.head() == batches[2]
    reopened.ack()
    assert reopened.head() is None and reopened.size_bytes == 0 and path.stat().st_size == 0
    reopened.close()


def test_a_record_torn_by_a_crash_is_cut_off_and_its_rows_reported(tmp_path):
    path = tmp_path / "track_points.journal"
    journal = Journal(path, max_bytes=1 << 20)
    journal.open()
    first, second = _batch(5), _batch(7)
    journal.append(first)
    journal.append(second)
    journal.close()
    with path.open("r+b") as f:  # the second record's write never finished
        f.truncate(path.stat().st_size - 10)

    reopened = Journal(path, max_bytes=1 << 20)
    reopened.open()
    assert (reopened.batches, reopened.torn_rows) == (1, 7)
    assert reopened.head() == first
    assert reopened.append(second) and reopened.batches == 2  # appends go after the cut
    reopened.close()


def test_a_full_journal_refuses_a_batch_and_writes_nothing(tmp_path):
    journal = Journal(tmp_path / "track_points.journal", max_bytes=400)
    journal.open()
    assert journal.append(_batch(3))
    size = journal.size_bytes
    assert not journal.append(_batch(50))
    assert (journal.batches, journal.size_bytes) == (1, size)
    journal.close()
