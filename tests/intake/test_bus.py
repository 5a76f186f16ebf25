from __future__ import annotations

import asyncio
import threading

from core.events import Event
from intake.bus import EventBus, Subscription
from tests.intake.builders import make_event


def drain(subscription: Subscription) -> list[Event]:
    """Everything queued right now (publish is synchronous, so nothing is in flight)."""
    out = []
    while (event := subscription.get(timeout=0)) is not None:
        out.append(event)
    return out


def test_every_subscriber_gets_every_event_in_order() -> None:
    # given
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    events = [make_event(i) for i in range(3)]
    # when
    for event in events:
        bus.publish(event)
    # then
    assert drain(first) == events
    assert drain(second) == events
    assert bus.dropped == 0


def test_a_full_queue_drops_its_oldest_and_counts_it() -> None:
    # given
    bus = EventBus()
    slow, fast = bus.subscribe(queue_size=2), bus.subscribe(queue_size=10)
    events = [make_event(i) for i in range(5)]
    # when
    for event in events:
        bus.publish(event)
    # then
    assert drain(slow) == events[-2:]
    assert slow.dropped == 3
    assert drain(fast) == events
    assert fast.dropped == 0
    assert bus.dropped == 3


def test_a_closed_subscription_keeps_what_was_queued_and_gets_nothing_more() -> None:
    # given
    bus = EventBus()
    events = [make_event(i) for i in range(3)]
    # when
    with bus.subscribe(queue_size=1) as subscription:
        bus.publish(events[0])
        bus.publish(events[1])
        assert bus.subscriber_count == 1
    bus.publish(events[2])
    # then
    assert subscription.closed
    assert bus.subscriber_count == 0
    assert drain(subscription) == [events[1]]
    assert bus.dropped == 1


def test_subscribing_after_close_gives_an_ended_subscription() -> None:
    bus = EventBus()
    bus.close()
    subscription = bus.subscribe()
    bus.publish(make_event())
    assert subscription.closed
    assert subscription.get(timeout=None) is None


def test_async_reader_gets_events_published_from_another_thread_until_the_bus_closes() -> None:
    # given
    bus = EventBus()
    events = [make_event(i) for i in range(3)]
    subscription = bus.subscribe()

    def publisher() -> None:
        for event in events:
            bus.publish(event)
        bus.close()

    async def read_all() -> list[Event]:
        thread = threading.Thread(target=publisher)
        got: list[Event] = []
        thread.start()
        async for event in subscription:
            got.append(event)
        thread.join()
        return got

    # when
    got = asyncio.run(asyncio.wait_for(read_all(), timeout=10))
    # then
    assert got == events
    assert bus.subscriber_count == 0


def test_async_reader_is_woken_by_a_publish_from_another_thread() -> None:
    bus = EventBus()
    event = make_event()
    subscription = bus.subscribe()

    async def first() -> Event:
        loop = asyncio.get_running_loop()
        # the thread starts once this coroutine awaits, normally parked on the empty queue
        loop.call_soon(lambda: threading.Thread(target=bus.publish, args=(event,)).start())
        async for got in subscription:
            return got
        raise AssertionError("the subscription ended without an event")

    assert asyncio.run(asyncio.wait_for(first(), timeout=10)) == event
