import pytest

from prefrl.data.records import RowError, last_content, parse_preference_row, parse_prompt_row


def test_standard_explicit_and_extra_columns_carried():
    pair = parse_preference_row({"prompt": "Q?", "chosen": " yes", "rejected": " no", "margin": 1, "source": "x"})
    assert (pair.prompt, pair.chosen, pair.rejected, pair.margin) == ("Q?", " yes", " no", 1.0)
    assert pair.extra == {"source": "x"} and not pair.is_conversational


def test_standard_implicit_prompt_hh_rlhf_style():
    chosen = "\n\nHuman: What is 2+2?\n\nAssistant: It is 4."
    rejected = "\n\nHuman: What is 2+2?\n\nAssistant: It is 5."
    pair = parse_preference_row({"chosen": chosen, "rejected": rejected})
    assert pair.prompt == "\n\nHuman: What is 2+2?\n\nAssistant:"
    assert (pair.chosen, pair.rejected) == (" It is 4.", " It is 5.")


def test_hh_multi_turn_splits_at_last_shared_assistant_tag():
    history = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant:"
    pair = parse_preference_row({"chosen": history + " Four.", "rejected": history + " Five."})
    assert pair.prompt == history and pair.chosen == " Four."


def test_standard_implicit_without_tag_backs_off_to_whitespace():
    pair = parse_preference_row({"chosen": "The answer is 42.", "rejected": "The answer is 47."})
    assert pair.prompt == "The answer is " and pair.chosen == "42." and pair.rejected == "47."


def test_conversational_explicit_and_implicit():
    user = [{"role": "user", "content": "2+2?"}]
    explicit = parse_preference_row(
        {"prompt": user, "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]}
    )
    implicit = parse_preference_row(
        {"chosen": user + [{"role": "assistant", "content": "4"}], "rejected": user + [{"role": "assistant", "content": "5"}]}
    )
    for pair in (explicit, implicit):
        assert pair.prompt == user and pair.is_conversational
        assert last_content(pair.chosen) == "4" and last_content(pair.rejected) == "5"


@pytest.mark.parametrize(
    "row, field",
    [
        ({"prompt": "q", "rejected": "b"}, "chosen"),
        ({"prompt": "q", "chosen": "a"}, "rejected"),
        ({"prompt": "q", "chosen": 3, "rejected": "b"}, "chosen"),
        ({"prompt": "q", "chosen": "  ", "rejected": "b"}, "chosen"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "margin": "big"}, "margin"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "margin": float("nan")}, "margin"),
        ({"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}, "chosen"),
        ({"prompt": [{"role": "wizard", "content": "q"}], "chosen": [], "rejected": []}, "prompt"),
        ({"prompt": [{"role": "user"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}, "prompt"),
        ({"chosen": "abc", "rejected": "xyz"}, "chosen"),
        ({"prompt": "q", "chosen": "a", "rejected": "b", "reference": 5}, "reference"),
    ],
)
def test_malformed_rows_name_the_field(row, field):
    with pytest.raises(RowError) as error:
        parse_preference_row(row)
    assert error.value.field_name == field


def test_not_a_dict():
    with pytest.raises(RowError, match="expected an object"):
        parse_preference_row(["a", "b"])


def test_prompt_rows():
    record = parse_prompt_row({"prompt": "q", "reference": "r", "id": 7})
    assert (record.prompt, record.reference, record.extra) == ("q", "r", {"id": 7})
    assert parse_prompt_row({"prompt": "q", "chosen": "a", "rejected": "b"}).prompt == "q"
    with pytest.raises(RowError) as error:
        parse_prompt_row({"question": "q"})
    assert error.value.field_name == "prompt"
