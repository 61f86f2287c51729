"""The incremental SSE parser, fed the way networks deliver: split anywhere."""

from __future__ import annotations

from hypothesis import given, strategies as st

from localgate.sse import Event, SseParser, encode

STREAM = (b": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\n"
          b"data: line one\ndata: line two\n\r\nevent: ping\r\ndata: {}\r\n\r\n"
          + "data: caf\u00e9 \u2603\n\n".encode())
EVENTS = [Event("message_start", '{"a":1}'), Event("", "line one\nline two"),
          Event("ping", "{}"), Event("", "caf\u00e9 \u2603")]


def test_whole_stream() -> None:
    p = SseParser()
    assert p.feed(STREAM) + p.close() == EVENTS


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_split_anywhere_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    p, got, last = SseParser(), [], 0
    for c in points + [len(STREAM)]:
        got += p.feed(STREAM[last:c])
        last = c
    assert got + p.close() == EVENTS


def test_unterminated_last_event_is_delivered_at_close() -> None:
    p = SseParser()
    assert p.feed(b"data: [DONE]") == []
    assert p.close() == [Event("", "[DONE]")]


def test_encode_round_trips() -> None:
    p = SseParser()
    assert p.feed(encode('{"x":1}', "content_block_delta") + encode("[DONE]")) == [
        Event("content_block_delta", '{"x":1}'), Event("", "[DONE]")]
