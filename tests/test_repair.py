"""Tests for localgate.repair (hosted-gateway.md section 4, SPEC.md section 5)."""

import copy
import hashlib

from localgate.repair import PLACEHOLDER, repair_tool_calls, rewrite_tool_call_ids


def U(text="hi"):
    return {"role": "user", "content": text}


def A(*ids):
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": i,
                "type": "function",
                "function": {"name": "read_file", "arguments": "{}"},
            }
            for i in ids
        ],
    }


def T(call_id, content="ok"):
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def P(call_id):
    return {"role": "tool", "tool_call_id": call_id, "content": PLACEHOLDER}


def run(messages):
    """Run repair and check the input was not mutated."""
    before = copy.deepcopy(messages)
    result, repairs = repair_tool_calls(messages)
    assert messages == before
    return result, repairs


def test_placeholder_text_is_byte_exact():
    assert PLACEHOLDER == "Tool execution was interrupted before completion."


# --- the seven examples of reference section 4.1 ------------------------------------------


def test_example_orphan_after_user_deleted():
    result, repairs = run([U(), T("orphan")])
    assert result == [U()]
    assert repairs == 1


def test_example_missing_result_gets_placeholder_before_user():
    result, repairs = run([U(), A("call_1"), U("continue")])
    assert result == [
        U(),
        A("call_1"),
        {"role": "tool", "tool_call_id": "call_1",
         "content": "Tool execution was interrupted before completion."},
        U("continue"),
    ]
    assert repairs == 1


def test_example_placeholder_comes_before_existing_result():
    result, repairs = run([U(), A("call_1", "call_2"), T("call_1"), U("next")])
    assert result == [U(), A("call_1", "call_2"), P("call_2"), T("call_1"), U("next")]
    assert repairs == 1


def test_example_duplicate_call_and_duplicate_result():
    result, repairs = run([U(), A("call_1", "call_1"), T("call_1", "first"), T("call_1", "dup")])
    assert result == [U(), A("call_1"), T("call_1", "first")]
    assert repairs == 2  # one duplicate call + one duplicate result


def test_example_first_call_per_id_wins_even_with_different_args():
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":2}'}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": '{"b":1}'}},
        ],
    }
    result, repairs = run([U(), assistant, T("call_1"), T("call_2")])
    expected_assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
        ],
    }
    assert result == [U(), expected_assistant, T("call_1"), T("call_2")]
    assert repairs == 2


def test_example_stray_result_replaced_by_placeholder():
    result, repairs = run(
        [U(), A("read_1"), T("read_1"), A("write_1"), T("stray"), U("go on")]
    )
    assert result == [U(), A("read_1"), T("read_1"), A("write_1"), P("write_1"), U("go on")]
    assert repairs == 2  # one placeholder + one dropped orphan


def test_example_reused_id_across_turns_unchanged():
    messages = [
        U(), A("call_1"), T("call_1", "first"), U("again"), A("call_1"), T("call_1", "second"),
    ]
    result, repairs = run(messages)
    assert result is messages
    assert repairs == 0


# --- consequences ---------------------------------------------------------------------------


def test_tool_before_any_assistant_deleted():
    result, repairs = run([T("call_1"), U(), T("call_1"), A("call_1"), T("call_1")])
    assert result == [U(), A("call_1"), T("call_1")]
    assert repairs == 2


def test_result_for_other_turns_id_deleted():
    # call_2 belongs to the later turn; its result sits in the earlier turn.
    result, repairs = run([U(), A("call_1"), T("call_1"), T("call_2"), A("call_2"), U("x")])
    assert result == [U(), A("call_1"), T("call_1"), A("call_2"), P("call_2"), U("x")]
    assert repairs == 2
    # and a result for an earlier turn's id in a later turn
    result, repairs = run([U(), A("call_1"), T("call_1"), A("call_2"), T("call_2"), T("call_1")])
    assert result == [U(), A("call_1"), T("call_1"), A("call_2"), T("call_2")]
    assert repairs == 1


def test_existing_result_after_user_stays_in_place():
    messages = [U(), A("call_1"), U("interjection"), T("call_1")]
    result, repairs = run(messages)
    assert result is messages
    assert result == [U(), A("call_1"), U("interjection"), T("call_1")]
    assert repairs == 0


def test_user_messages_do_not_end_a_group():
    result, repairs = run([U(), A("c1", "c2"), U("a"), T("c2"), U("b"), T("c1"), T("c2")])
    assert result == [U(), A("c1", "c2"), U("a"), T("c2"), U("b"), T("c1")]
    assert repairs == 1


def test_assistant_with_empty_or_no_tool_calls_only_deletes_orphans():
    empty = {"role": "assistant", "content": "text", "tool_calls": []}
    plain = {"role": "assistant", "content": "text"}
    result, repairs = run([U(), empty, T("x"), U("y"), plain, T("z"), U("w")])
    assert result == [U(), empty, U("y"), plain, U("w")]
    assert repairs == 2
    messages = [U(), empty, U("y"), plain, U("w")]
    result, repairs = run(messages)
    assert result is messages
    assert repairs == 0


def test_multiple_placeholders_in_tool_call_order():
    result, repairs = run([U(), A("a", "b", "c"), U("x"), T("b")])
    assert result == [U(), A("a", "b", "c"), P("a"), P("c"), U("x"), T("b")]
    assert repairs == 2


def test_trailing_assistant_with_calls_gets_placeholders():
    result, repairs = run([U(), A("a", "b")])
    assert result == [U(), A("a", "b"), P("a"), P("b")]
    assert repairs == 2


# --- counting, mutation, identity ---------------------------------------------------------


def test_repairs_count_sums_all_kinds():
    messages = [
        T("early"),  # dropped (group 0)
        U(),
        A("a", "a", "b", "a"),  # two duplicate calls dropped
        T("a", "first"),
        T("a", "again"),  # dropped duplicate result
        T("ghost"),  # dropped orphan
        # b missing -> placeholder
    ]
    result, repairs = run(messages)
    assert result == [U(), A("a", "b"), P("b"), T("a", "first")]
    assert repairs == 1 + 2 + 1 + 1 + 1


def test_input_not_mutated_and_unchanged_assistant_reused():
    a1 = A("a")
    a2 = A("b", "b")
    messages = [U(), a1, T("a"), a2]
    snapshot = copy.deepcopy(messages)
    result, repairs = repair_tool_calls(messages)
    assert messages == snapshot
    assert a2["tool_calls"] == snapshot[3]["tool_calls"]
    assert result is not messages
    assert result[1] is a1  # untouched assistant dict not copied
    assert result[3] is not a2
    assert result == [U(), A("a"), T("a"), A("b"), P("b")]
    assert repairs == 2
    # mutating the result must not reach the input
    result[4]["content"] = "changed"
    result[3]["tool_calls"].append("x")
    assert messages == snapshot


def test_same_object_returned_when_nothing_to_fix():
    plain = [{"role": "system", "content": "s"}, U(), {"role": "assistant", "content": "hello"}]
    result, repairs = repair_tool_calls(plain)
    assert result is plain and repairs == 0
    good = [U(), A("a", "b"), T("a"), T("b"), U("more")]
    result, repairs = repair_tool_calls(good)
    assert result is good and repairs == 0
    empty = []
    result, repairs = repair_tool_calls(empty)
    assert result is empty and repairs == 0


def test_non_list_input_returned_unchanged():
    for value in (None, "messages", 3, {"role": "user"}, (U(), T("x"))):
        result, repairs = repair_tool_calls(value)
        assert result is value
        assert repairs == 0


def test_junk_entries_do_not_raise_and_stay_in_place():
    messages = [
        None,
        "junk",
        42,
        U(),
        {"role": "assistant", "tool_calls": "not a list"},
        ["list"],
        T("orphan"),
        {"role": "assistant", "tool_calls": [None, "x", {"no": "id"}, {"id": 7}, {"id": "ok"}]},
        {"role": "tool", "tool_call_id": ["unhashable"], "content": "bad"},
        {"role": "tool", "content": "missing id"},
        {"no_role": True},
    ]
    result, repairs = run(messages)
    assert result == [
        None,
        "junk",
        42,
        U(),
        {"role": "assistant", "tool_calls": "not a list"},
        ["list"],
        {"role": "assistant", "tool_calls": [None, "x", {"no": "id"}, {"id": 7}, {"id": "ok"}]},
        P("ok"),
        {"no_role": True},
    ]
    # orphan, tool with unhashable id, tool with missing id dropped; one placeholder
    assert repairs == 4


def test_junk_only_returns_same_object():
    messages = [None, 1, "x", [], {"role": "assistant", "tool_calls": None}]
    result, repairs = repair_tool_calls(messages)
    assert result is messages and repairs == 0


# --- id rewriting ----------------------------------------------------------------------------


def sha(value):
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def test_rewrite_anthropic_hashes_ids_with_dots():
    messages = [U(), A("toolu.1", "plain_id"), T("toolu.1"), T("plain_id"), U("next")]
    snapshot = copy.deepcopy(messages)
    result, count = rewrite_tool_call_ids(messages, "anthropic")
    assert messages == snapshot
    h = sha("toolu.1")
    assert len(h) == 64
    assert result == [U(), A(h, "plain_id"), T(h), T("plain_id"), U("next")]
    assert result[1]["tool_calls"][1] is messages[1]["tool_calls"][1]
    assert result[3] is messages[3]
    assert count == 2


def test_rewrite_anthropic_untouched_without_dots():
    messages = [U(), A("call_1", "x"), T("call_1"), T("x")]
    result, count = rewrite_tool_call_ids(messages, "anthropic")
    assert result is messages and count == 0


def test_rewrite_mistral_forces_nine_chars():
    messages = [U(), A("call_abcdefgh", "abc123XYZ", "s"), T("call_abcdefgh"), T("abc123XYZ"),
                T("s")]
    snapshot = copy.deepcopy(messages)
    result, count = rewrite_tool_call_ids(messages, "mistral")
    assert messages == snapshot
    h1, h2 = sha("call_abcdefgh")[:9], sha("s")[:9]
    assert len(h1) == 9 and len(h2) == 9
    ids = [c["id"] for c in result[1]["tool_calls"]]
    assert ids == [h1, "abc123XYZ", h2]
    assert [m["tool_call_id"] for m in result[2:]] == [h1, "abc123XYZ", h2]
    assert result[3] is messages[3]  # 9-char id untouched
    assert count == 4
    # repaired pairs still match: nothing to repair afterwards
    assert repair_tool_calls(result) == (result, 0)


def test_rewrite_mistral_nine_char_ids_untouched():
    messages = [U(), A("abcdefghi"), T("abcdefghi")]
    result, count = rewrite_tool_call_ids(messages, "mistral")
    assert result is messages and count == 0


def test_rewrite_is_idempotent():
    messages = [U(), A("a.b", "long_identifier"), T("a.b"), T("long_identifier")]
    for style in ("anthropic", "mistral"):
        once, n1 = rewrite_tool_call_ids(messages, style)
        assert n1 > 0
        twice, n2 = rewrite_tool_call_ids(once, style)
        assert twice is once and n2 == 0


def test_rewrite_other_style_or_non_list_unchanged():
    messages = [U(), A("a.b"), T("a.b")]
    for style in ("openai", "", "Anthropic", None):
        result, count = rewrite_tool_call_ids(messages, style)
        assert result is messages and count == 0
    for value in (None, "x", {"role": "tool"}):
        result, count = rewrite_tool_call_ids(value, "anthropic")
        assert result is value and count == 0


def test_rewrite_junk_does_not_raise():
    messages = [None, "x", {"role": "assistant", "tool_calls": "no"},
                {"role": "assistant", "tool_calls": [None, {"id": 5}, {"id": "a.b"}]},
                {"role": "tool", "tool_call_id": None}, {"role": "tool", "tool_call_id": "a.b"}]
    snapshot = copy.deepcopy(messages)
    result, count = rewrite_tool_call_ids(messages, "anthropic")
    assert messages == snapshot
    h = sha("a.b")
    assert result == [None, "x", {"role": "assistant", "tool_calls": "no"},
                      {"role": "assistant", "tool_calls": [None, {"id": 5}, {"id": h}]},
                      {"role": "tool", "tool_call_id": None}, {"role": "tool", "tool_call_id": h}]
    assert count == 2
