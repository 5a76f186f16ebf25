"""The outbox against a real HTTP receiver that checks every Standard Webhooks signature."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from core.clock import SystemClock
from gridwatch.cli import main
from intake.outbox import OutboxDelivery, OutboxError, enqueue, replay_command
from intake.webhooks import retry_after_s
from tests.intake.outbox_builders import SimClock, make_db, make_secret, make_target, outbox_rows, put
from tests.intake.receiver import Receiver, running
from tests.support.postgres import StoreTargets

REPO = Path(__file__).resolve().parents[2]


def run_for(delivery: OutboxDelivery, clock: SimClock, seconds: float, step: float = 1.0) -> int:
    """Rounds every `step` simulated seconds for `seconds`; how many deliveries were attempted."""
    attempted = 0
    end = clock.now().timestamp() + seconds
    while clock.now().timestamp() < end:
        attempted += delivery.run_once(clock.now()).attempted
        clock.advance(step)
    return attempted


def in_order(receiver: Receiver) -> dict[tuple[str, str], list[object]]:
    seen: dict[tuple[str, str], list[object]] = defaultdict(list)
    for arrival in receiver.arrivals:
        seen[(arrival.path, str(arrival.data["case_id"]))].append(arrival.data["n"])
    return seen


def test_receiver_down_for_ten_minutes_then_up_gets_everything_once_in_order(
    tmp_path: Path, store_targets: StoreTargets
) -> None:
    # given: two targets on a receiver that answers 503, 12 cases with 4 changes each
    clock = SimClock()
    secrets = {"/a": make_secret(), "/b": make_secret()}
    with running(Receiver(secrets, now=clock.now)) as receiver:
        db = make_db(store_targets)
        targets = {
            "city-a": make_target(receiver.url("/a"), secrets["/a"]),
            "city-b": make_target(receiver.url("/b"), secrets["/b"]),
        }
        conn = db.connect()
        sent = [i for n in range(4) for c in range(12) for i in put(conn, f"case-{c}", n, ["city-a", "city-b"])]
        conn.close()
        receiver.down = True
        with OutboxDelivery(db, targets, clock) as delivery:
            # when: down for 10 minutes of simulated time
            tried_while_down = run_for(delivery, clock, 600)
            assert receiver.arrivals == []
            assert delivery.stats().targets[0].pending == 48
            receiver.down = False
            run_for(delivery, clock, 130)  # at most one capped backoff (60 s) plus the queue behind it
            stats = delivery.stats()
        # then: every delivery once, by webhook id, in order per case and target
        ids = receiver.ids()
        assert sorted(ids) == sorted(sent)
        assert len(ids) == len(set(ids)) == 96
        assert all(ns == [0, 1, 2, 3] for ns in in_order(receiver).values())
        assert len(in_order(receiver)) == 24
        assert receiver.rejected == 0
        assert tried_while_down > 24 * 5  # every queue head was retried, with backoff
        assert [(t.pending, t.delivered, t.dead) for t in stats.targets] == [(0, 48, 0), (0, 48, 0)]


def test_a_failing_case_holds_back_only_its_own_later_deliveries(tmp_path: Path, store_targets: StoreTargets) -> None:
    clock = SimClock()
    secret = make_secret()
    stuck = {"on": True}

    def status_for(path: str, body: dict[str, object]) -> int:
        data = body["data"]
        assert isinstance(data, dict)
        return 500 if stuck["on"] and data["case_id"] == "case-stuck" else 200

    with running(Receiver({"/": secret}, now=clock.now, status_for=status_for)) as receiver:
        db = make_db(store_targets)
        conn = db.connect()
        for n in range(3):
            for case in ("case-stuck", "case-ok"):
                put(conn, case, n, ["city"])
        conn.close()
        with OutboxDelivery(db, {"city": make_target(receiver.url("/"), secret)}, clock) as delivery:
            run_for(delivery, clock, 30)
            assert in_order(receiver) == {("/", "case-ok"): [0, 1, 2]}
            (city,) = delivery.stats().targets
            assert (city.pending, city.held, city.delivered) == (3, 2, 3)
            stuck["on"] = False
            run_for(delivery, clock, 70)
        assert in_order(receiver)[("/", "case-stuck")] == [0, 1, 2]


def test_a_400_is_a_dead_letter_at_once_holds_its_case_and_replay_sends_it_again(
    tmp_path: Path, store_targets: StoreTargets
) -> None:
    clock = SimClock()
    secret = make_secret()
    refuse = {"on": True}

    def status_for(path: str, body: dict[str, object]) -> int:
        data = body["data"]
        assert isinstance(data, dict)
        return 400 if refuse["on"] and data == {"case_id": "case-bad", "n": 1} else 204

    with running(Receiver({"/": secret}, now=clock.now, status_for=status_for)) as receiver:
        db = make_db(store_targets)
        conn = db.connect()
        ids = [put(conn, "case-bad", n, ["city"])[0] for n in range(3)]
        conn.close()
        with OutboxDelivery(db, {"city": make_target(receiver.url("/"), secret)}, clock) as delivery:
            run_for(delivery, clock, 120)
            (dead,) = delivery.dead_letters()
            assert (dead.id, dead.seq, dead.attempts, dead.last_status) == (ids[1], 2, 1, 400)
            assert dead.last_error is not None and dead.last_error.startswith("HTTP 400")
            assert receiver.ids() == [ids[0]]  # #2 waits behind the dead letter
            assert delivery.stats().targets[0].held == 1
            refuse["on"] = False
            assert delivery.replay([ids[1]]) == 1
            delivery.run_once(clock.now())
            delivery.run_once(clock.now())
            assert delivery.dead_letters() == []
        assert receiver.ids() == ids


def where_args(targets: StoreTargets, tmp_path: Path) -> list[str]:
    """How `gridwatch outbox replay` is told the case store: its SQLite file, or a config naming the database."""
    if targets.dialect == "sqlite":
        return ["--db", str(targets.cases)]
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.yaml").write_text(f"intake:\n  database_url: '{targets.cases}'\n")
    return ["--config", str(config)]


def test_replay_command_sends_dead_letters_again(
    tmp_path: Path, store_targets: StoreTargets, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = SimClock()
    secret = make_secret()
    with running(Receiver({"/": secret}, now=clock.now, status_for=lambda p, b: 410)) as receiver:
        db = make_db(store_targets)
        conn = db.connect()
        ids = [put(conn, f"case-{c}", 0, ["city"])[0] for c in range(3)]
        conn.close()
        with OutboxDelivery(db, {"city": make_target(receiver.url("/"), secret)}, clock) as delivery:
            delivery.run_once(clock.now())
            assert len(delivery.dead_letters()) == 3
            assert replay_command(db, [ids[0], "01NOSUCHID"], dead_only=True) == (
                f"1 delivery back to pending in {db.label}; not dead letters: 01NOSUCHID"
            )
            assert main(["outbox", "replay", *where_args(store_targets, tmp_path), "--dead"]) == 0
            assert capsys.readouterr().out.strip() == f"2 deliveries back to pending in {db.label}"
            assert delivery.dead_letters() == []
            with pytest.raises(OutboxError, match="name the deliveries"):
                replay_command(db, None, dead_only=False)
            receiver.status_for = None
            assert delivery.run_once(clock.now()).delivered == 3
        assert sorted(receiver.ids()) == sorted(ids)


def test_backoff_waits_grow_with_jitter_within_bounds(tmp_path: Path, store_targets: StoreTargets) -> None:
    clock = SimClock()
    secret = make_secret()
    with running(Receiver({"/": secret}, now=clock.now, down=True)) as receiver:
        db = make_db(store_targets)
        conn = db.connect()
        put(conn, "case-1", 0, ["city"])
        conn.close()
        target = make_target(receiver.url("/"), secret, backoff_base_s=2.0, backoff_max_s=100.0, backoff_jitter=0.5)
        waits: list[float] = []
        with OutboxDelivery(db, {"city": target}, clock) as delivery:
            for _ in range(9):
                tried = clock.now()
                assert delivery.run_once(tried).retrying == 1
                ((due,),) = outbox_rows(db, "next_attempt_at")
                waits.append((datetime.fromisoformat(str(due)) - tried).total_seconds())
                clock.at = datetime.fromisoformat(str(due))
    caps = [min(100.0, 2.0 * 2**n) for n in range(9)]
    assert all(cap / 2 <= wait <= cap for wait, cap in zip(waits, caps, strict=True))
    assert waits[:6] == sorted(waits[:6])  # below the cap each wait is longer than the one before
    assert len({round(w / c, 6) for w, c in zip(waits, caps, strict=True)}) > 1  # jittered, not a fixed factor


def test_connection_refused_is_retried_then_a_dead_letter(tmp_path: Path, store_targets: StoreTargets) -> None:
    clock = SimClock()
    secret = make_secret()
    with running(Receiver({"/": secret})) as receiver:
        closed_url = receiver.url("/")
    db = make_db(store_targets)
    conn = db.connect()
    put(conn, "case-1", 0, ["city"])
    conn.close()
    with OutboxDelivery(db, {"city": make_target(closed_url, secret, max_attempts=3)}, clock) as delivery:
        run_for(delivery, clock, 30)
        (dead,) = delivery.dead_letters()
    assert (dead.attempts, dead.last_status) == (3, None)
    assert dead.last_error is not None and dead.last_error.startswith("ConnectError")


_CHILD = """
import json, sys, time
from intake.db import open_database
from intake.outbox import enqueue
conn = open_database(sys.argv[1], "cases").connect()
ids = []
for c in range(20):
    for n in range(3):
        conn.begin()
        ids += enqueue(conn, case_id=f"case-{c}", event_type="case.updated", payload={"case_id": f"case-{c}", "n": n},
                       targets=["city"])
        conn.execute("COMMIT")
conn.begin()
enqueue(conn, case_id="case-uncommitted", event_type="case.updated", payload={"case_id": "x", "n": 0}, targets=["city"])
print(json.dumps(ids), flush=True)
time.sleep(120)
"""


def test_kill_9_between_commit_and_delivery_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, store_targets: StoreTargets
) -> None:
    # given: a process that committed 60 deliveries, holds one more in an open transaction, and dies by SIGKILL
    db = make_db(store_targets)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store_targets.cases)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    committed = json.loads(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    child.stdout.close()
    secret = make_secret()
    with running(Receiver({"/": secret})) as receiver:  # verified by the package's Webhook.verify, wall clock
        targets = {"city": make_target(receiver.url("/"), secret)}
        # when: a new delivery on the same file, then another one after it
        with OutboxDelivery(db, targets, SystemClock()) as delivery:
            while delivery.run_once(SystemClock().now()).attempted:
                pass
        with OutboxDelivery(db, targets, SystemClock()) as again:
            assert again.run_once(SystemClock().now()).attempted == 0
    # then: exactly the committed ones, each once, in order per case
    assert len(committed) == 60
    assert sorted(receiver.ids()) == sorted(committed)
    assert len(set(receiver.ids())) == 60
    assert all(ns == [0, 1, 2] for ns in in_order(receiver).values())
    assert ("/", "x") not in in_order(receiver)


def test_background_thread_delivers_and_stops(tmp_path: Path, store_targets: StoreTargets) -> None:
    secret = make_secret()
    with running(Receiver({"/": secret})) as receiver:
        db = make_db(store_targets)
        delivery = OutboxDelivery(db, {"city": make_target(receiver.url("/"), secret)}, SystemClock(), poll_s=0.05)
        delivery.start()
        conn = db.connect()
        ids = [i for n in range(5) for i in put(conn, "case-1", n, ["city"])]
        conn.close()
        deadline = time.monotonic() + 10
        while len(receiver.ids()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        delivery.close()
    assert receiver.ids() == ids


def test_enqueue_writes_in_the_callers_transaction_only(tmp_path: Path, store_targets: StoreTargets) -> None:
    conn = make_db(store_targets).connect()
    with pytest.raises(OutboxError, match="no open transaction"):
        enqueue(conn, case_id="c", event_type="case.created", payload={}, targets=["city"])
    conn.begin()
    with pytest.raises(OutboxError, match="twice"):
        enqueue(conn, case_id="c", event_type="case.created", payload={}, targets=["city", "city"])
    ids = enqueue(conn, case_id="c", event_type="case.created", payload={"a": 1}, targets=["city", "hotline"])
    assert len(ids) == 2 and conn.in_transaction
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    conn.close()


def test_secrets_never_in_logs_stats_or_dead_letters(
    tmp_path: Path, store_targets: StoreTargets, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock()
    secret = make_secret()
    answers = iter([503, 400])

    def status_for(path: str, body: dict[str, object]) -> int:
        return next(answers)

    with running(Receiver({"/": secret}, now=clock.now, status_for=status_for)) as receiver:
        db = make_db(store_targets)
        conn = db.connect()
        put(conn, "case-1", 0, ["city"])
        conn.close()
        url = receiver.url("/", userinfo="ops:hunter22@", query="?token=tok-s3cret")
        target = make_target(url, secret)
        with caplog.at_level(logging.DEBUG), OutboxDelivery(db, {"city": target}, clock) as delivery:
            run_for(delivery, clock, 10)
            shown = [delivery.stats().model_dump_json(), *(d.model_dump_json() for d in delivery.dead_letters())]
    assert len(shown) == 2 and "HTTP 400" in shown[1] and "token=***" in shown[1]
    for text in (caplog.text, *shown, repr(target), str(target), target.safe_url):
        for needle in (secret, secret.removeprefix("whsec_"), "hunter22", "tok-s3cret"):
            assert needle not in text
    assert "ops:***" not in caplog.text and "http://***@127.0.0.1" in caplog.text


@pytest.mark.parametrize("retry_after", ["120", "http-date"])
def test_a_503_with_retry_after_waits_as_long_as_the_receiver_asked(
    store_targets: StoreTargets, retry_after: str
) -> None:
    # given: a receiver down for maintenance that asks for two minutes, and a backoff of about a second
    clock = SimClock()
    secret = make_secret()
    with running(Receiver({"/": secret}, now=clock.now)) as receiver:
        receiver.down = True
        asked = clock.now() + timedelta(seconds=120)
        receiver.retry_after = "120" if retry_after == "120" else format_datetime(asked, usegmt=True)
        db = make_db(store_targets)
        conn = db.connect()
        (webhook_id,) = put(conn, "case-1", 0, ["city"])
        conn.close()
        with OutboxDelivery(db, {"city": make_target(receiver.url("/"), secret)}, clock) as delivery:
            # when
            run_for(delivery, clock, 110)
            tried_early = receiver.attempts
            receiver.down = False
            run_for(delivery, clock, 20)
        # then: no attempt before the two minutes were up, and delivered right after
        assert tried_early == 1
        assert receiver.ids() == [webhook_id]


def test_retry_after_is_read_as_seconds_or_an_http_date_and_ignored_when_unreadable() -> None:
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert retry_after_s("30", now) == 30.0
    assert retry_after_s("Tue, 01 Dec 2026 08:05:00 GMT", now) == 300.0
    assert retry_after_s("Tue, 01 Dec 2026 07:00:00 GMT", now) == 0.0
    assert retry_after_s("soon", now) is None
    assert retry_after_s(None, now) is None


def test_old_delivered_rows_are_purged_and_each_cases_numbering_goes_on(store_targets: StoreTargets) -> None:
    # given: three cases with three delivered changes each, a week and a day ago, and one still pending
    clock = SimClock()
    secret = make_secret()
    with running(Receiver({"/": secret}, now=clock.now)) as receiver:
        db = make_db(store_targets)
        conn = db.connect()
        for c in range(3):
            for n in range(3):
                put(conn, f"case-{c}", n, ["city"])
        target = {"city": make_target(receiver.url("/"), secret)}
        with OutboxDelivery(db, target, clock, keep_delivered=timedelta(days=7)) as delivery:
            run_for(delivery, clock, 5)  # one queue head per case a round
            assert len(receiver.ids()) == 9
            clock.advance(8 * 86_400)
            receiver.down = True
            put(conn, "case-0", 3, ["city"])
            # when
            removed = delivery.purge(clock.now())
            # then: every delivered row but each queue's last row went; the pending one stays
            assert removed == 7
            rows = outbox_rows(db, "case_id, seq, state")
            assert sorted(rows) == [("case-0", 4, "pending"), ("case-1", 3, "delivered"), ("case-2", 3, "delivered")]
            # and the next change of a case is numbered after its last one, and still delivered in order
            receiver.down = False
            put(conn, "case-1", 3, ["city"])
            clock.advance(120)
            run_for(delivery, clock, 5)
            assert delivery.purge(clock.now()) == 1  # case-1 #3, now behind its #4; the new rows are too young
        conn.close()
    assert sorted((a.data["case_id"], a.data["n"]) for a in receiver.arrivals[-2:]) == [("case-0", 3), ("case-1", 3)]
    assert len(receiver.ids()) == len(set(receiver.ids())) == 11
