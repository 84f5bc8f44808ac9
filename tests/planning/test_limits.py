"""Usage limits from serving capacity: the arithmetic of `neocloud.planning.limits`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neocloud.core.errors import InvalidInput
from neocloud.planning import limits as core
from neocloud.planning.limits_schemas import (
    DEEPSEEK_INPUT_PER_GPU,
    DEEPSEEK_OUTPUT_PER_GPU,
    LimitsRequest,
    load_request,
    to_question,
    with_lines,
)

TIERS: list[dict[str, Any]] = [
    {"name": "free", "users": 1_000_000, "weight": 0.2, "peak_concurrency": 0.05},
    {"name": "pro", "users": 200_000, "weight": 1, "peak_concurrency": 0.1},
    {"name": "max", "users": 20_000, "weight": 5, "peak_concurrency": 0.2},
]


def ask(**body: Any) -> dict[str, Any]:
    body.setdefault("tiers", TIERS)
    return core.usage_limits(to_question(LimitsRequest.model_validate(body)))


def tier(at: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in at["tiers"] if t["tier"] == name)
    return found


def numbers(row: dict[str, Any]) -> list[int]:
    return [
        row["tokens_per_min"]["peak"],
        row["tokens_per_min"]["off_peak"],
        row["messages_per_5h"]["peak"],
        row["messages_per_5h"]["off_peak"],
        row["tokens_per_week"],
        row["messages_per_week"],
    ]


@settings(max_examples=40, deadline=None)
@given(
    gpus=st.integers(1, 2_000_000),
    more=st.integers(1, 2_000_000),
    chip=st.sampled_from(sorted(core.BUILTIN_CHIPS)),
    ratio=st.floats(1, 5),
)
def test_more_gpus_never_lower_any_limit(gpus: int, more: int, chip: str, ratio: float) -> None:
    load = {"peak_to_off_peak": ratio}
    small = ask(capacity={"gpus": gpus, "accelerator": chip}, load=load)["before"]
    big = ask(capacity={"gpus": gpus + more, "accelerator": chip}, load=load)["before"]
    assert big["fleet"]["tokens_per_min"]["capacity"] > small["fleet"]["tokens_per_min"]["capacity"]
    for s, b in zip(small["tiers"], big["tiers"], strict=True):
        assert all(y >= x for x, y in zip(numbers(s), numbers(b), strict=True)), (s, b)


def test_300_mw_of_h100_is_196k_gpus_and_multiplies_every_tier_alike() -> None:
    out = ask(capacity={"gpus": 40_000}, add={"capacity": {"mw": 300}})
    change = out["change"]
    # 300 MW at the default PUE of 1.2 is 250 MW of IT power; a DGX H100 draws 10.2 kW/8.
    assert change["added_gpus"] == 196_078
    assert change["added_facility_mw"] == pytest.approx(300, abs=0.01)
    assert change["capacity_multiplier"] == pytest.approx(236_078 / 40_000, abs=1e-3)
    for row, before, after in zip(
        change["tiers"], out["before"]["tiers"], out["after"]["tiers"], strict=True
    ):
        assert row["multiplier"] == pytest.approx(change["capacity_multiplier"], abs=1e-3)
        assert row["messages_per_5h"] == [
            before["messages_per_5h"]["peak"],
            after["messages_per_5h"]["peak"],
        ]
        want = before["messages_per_5h"]["peak"] * change["capacity_multiplier"]
        assert after["messages_per_5h"]["peak"] == pytest.approx(want, rel=0.02)
    assert out["after"]["fleet"]["gpus"] == 236_078


def test_the_new_block_can_go_to_some_tiers_only() -> None:
    out = ask(capacity={"gpus": 40_000}, add={"capacity": {"mw": 300}, "tiers": ["max"]})
    before, after = out["before"], out["after"]
    for name in ("free", "pro"):
        assert tier(after, name)["tokens_per_min"] == tier(before, name)["tokens_per_min"]
        assert tier(after, name)["tokens_per_week"] == tier(before, name)["tokens_per_week"]
    gain = {row["tier"]: row["multiplier"] for row in out["change"]["tiers"]}
    assert gain["free"] == gain["pro"] == 1
    assert gain["max"] > out["change"]["capacity_multiplier"]
    # Every token a minute the fleet gains goes to the max tier's active users.
    used = sum(
        tier(after, t["name"])["tokens_per_min"]["peak"] * t["users"] * t["peak_concurrency"]
        for t in TIERS
    )
    assert used == pytest.approx(after["fleet"]["tokens_per_min"]["capacity"], rel=1e-4)


def test_tier_weights_set_the_ratio_of_limits_and_the_tiers_fill_the_fleet() -> None:
    out = ask(capacity={"gpus": 10_000})["before"]
    free, pro, top = (tier(out, n)["tokens_per_min"]["peak"] for n in ("free", "pro", "max"))
    assert pro / free == pytest.approx(5, rel=1e-3)
    assert top / pro == pytest.approx(5, rel=1e-3)
    active = sum(
        tier(out, t["name"])["tokens_per_min"]["peak"] * t["users"] * t["peak_concurrency"]
        for t in TIERS
    )
    assert active == pytest.approx(out["fleet"]["tokens_per_min"]["capacity"], rel=1e-4)
    # Weekly: what users are expected to consume of their limits fills the week.
    weekly = sum(tier(out, t["name"])["tokens_per_week"] * t["users"] * 0.2 for t in TIERS)
    assert weekly == pytest.approx(out["fleet"]["tokens_per_day"] * 7, rel=1e-4)


def test_traffic_shares_split_the_fleet_as_given() -> None:
    tiers = [
        {"name": "consumer", "users": 10_000_000, "traffic_share": 0.25},
        {"name": "api", "users": 50_000, "traffic_share": 0.75, "peak_concurrency": 0.5},
    ]
    out = ask(capacity={"gpus": 5_000}, tiers=tiers)["before"]
    assert [t["share_of_peak"] for t in out["tiers"]] == [0.25, 0.75]
    with pytest.raises(InvalidInput, match=r"sum to 0\.9") as err:
        ask(capacity={"gpus": 5_000}, tiers=[{**tiers[0], "traffic_share": 0.15}, tiers[1]])
    assert err.value.errors[0]["loc"] == ["tiers"]


def test_off_peak_gives_active_users_more_and_leaves_the_rest_spare() -> None:
    out = ask(capacity={"gpus": 10_000}, load={"peak_to_off_peak": 2})
    fleet = out["before"]["fleet"]["tokens_per_min"]
    assert out["load"]["peak_to_off_peak"] == 2
    assert fleet["served_off_peak"] + fleet["spare_off_peak"] == pytest.approx(
        fleet["capacity"], abs=2
    )
    assert fleet["served_off_peak"] == pytest.approx(fleet["capacity"] / 2, abs=1)
    pro = tier(out["before"], "pro")["tokens_per_min"]
    assert pro["off_peak"] == pytest.approx(2 * pro["peak"], abs=2)


def test_an_hourly_shape_sets_the_peak_to_off_peak_ratio() -> None:
    hourly = [3.0] * 12 + [1.0] * 12
    out = ask(capacity={"gpus": 1_000}, load={"hourly": hourly})
    assert out["load"] == {"peak_to_off_peak": 3.0, "mean_to_peak": pytest.approx(0.667, 1e-3)}


def test_the_default_profile_reproduces_deepseeks_published_day() -> None:
    # DeepSeek served 168B output tokens a day on 226.75 H800 nodes on average: ~1,072 output
    # tokens/s per GPU at the traffic's 3.6 : 1 mix, from 73.7k/14.8k tokens/s per node.
    req = LimitsRequest.model_validate({"capacity": {"gpus": 1}})
    q = to_question(req)
    h100 = core.BUILTIN_CHIPS["H100"]
    rate = core.per_gpu(q.profile, h100, h100)
    published = 168e9 / 86_400 / (226.75 * 8)
    assert rate["output_tokens_per_s"] == pytest.approx(published, rel=0.02)
    assert (req.model.input_tokens_per_s, req.model.output_tokens_per_s) == (
        DEEPSEEK_INPUT_PER_GPU,
        DEEPSEEK_OUTPUT_PER_GPU,
    )
    # And the default day: peak 278 nodes against 226.75 on average.
    out = ask(capacity={"gpus": 1_000})
    assert out["load"]["mean_to_peak"] == pytest.approx(226.75 / 278, abs=0.01)


def test_faster_chips_serve_more_and_a_measured_speed_wins() -> None:
    h100 = ask(capacity={"gpus": 1_000, "accelerator": "H100"})["before"]["fleet"]
    gb200 = ask(capacity={"gpus": 1_000, "accelerator": "GB200"})["before"]["fleet"]
    ratio = gb200["tokens_per_min"]["capacity"] / h100["tokens_per_min"]["capacity"]
    # Prefill by BF16 (2500/989), decode by HBM bandwidth (8/3.35).
    assert 2.3 < ratio < 2.6
    model = {"speed": {"GB200": 4.0}}
    fast = ask(capacity={"gpus": 1_000, "accelerator": "GB200"}, model=model)["before"]["fleet"]
    assert fast["tokens_per_min"]["capacity"] / h100["tokens_per_min"]["capacity"] == (
        pytest.approx(4.0, rel=1e-6)
    )


def test_a_blended_throughput_figure_is_enough() -> None:
    model = {"tokens_per_s": 5_000, "message": {"input_tokens": 4_000, "output_tokens": 1_000}}
    out = ask(capacity={"gpus": 100}, model=model, headroom=0)["before"]
    assert out["fleet"]["tokens_per_min"]["capacity"] == 100 * 5_000 * 60
    assert out["fleet"]["blocks"][0]["tokens_per_s_per_gpu"] == 5_000


def test_headroom_holds_back_that_share_of_throughput() -> None:
    full = ask(capacity={"gpus": 100}, headroom=0)["before"]["fleet"]["tokens_per_min"]
    held = ask(capacity={"gpus": 100}, headroom=0.25)["before"]["fleet"]["tokens_per_min"]
    assert held["capacity"] == pytest.approx(0.75 * full["capacity"], abs=1)


def test_mw_turns_into_gpus_by_the_chips_node_power_and_the_pue() -> None:
    gb = core.Block("GB200", mw=12, pue=1.2)
    gpus, watts = core.block_gpus(gb, core.BUILTIN_CHIPS)
    assert watts == pytest.approx(120_000 / 72)
    assert gpus == math.floor(10_000_000 / watts)
    custom = core.Chip("XPU-9", tdp_w=700, bf16_tflops=900)
    assert core.block_gpus(core.Block("XPU-9", mw=1.0, pue=1.0), {"XPU-9": custom})[0] == 784


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"capacity": {"gpus": 10, "accelerator": "X100"}}, ["capacity", 0, "accelerator"], "X100"),
        (
            {"capacity": {"gpus": 10}, "model": {"accelerator": "X1"}},
            ["model", "accelerator"],
            "X1",
        ),
        (
            {"capacity": {"gpus": 10}, "add": {"capacity": {"gpus": 1}, "tiers": ["gold"]}},
            ["add", "tiers", 0],
            "gold",
        ),
        (
            {"capacity": {"gpus": 10}, "tiers": [TIERS[0], TIERS[0]]},
            ["tiers", 1, "name"],
            "twice",
        ),
        ({"capacity": {"gpus": 10}, "load": {"hourly": [1.0] * 25}}, ["load", "hourly"], "24"),
        ({"capacity": {"gpus": 10}, "load": {"hourly": [0.0] * 24}}, ["load", "hourly"], "above"),
        ({"capacity": {"watts_per_gpu": 1e5, "mw": 0.01}}, ["capacity"], "no whole GPU"),
    ],
)
def test_bad_questions_name_the_field(body: dict[str, Any], loc: list[Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as err:
        ask(**body)
    assert err.value.errors[0]["loc"] == loc


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"capacity": {"gpus": 10, "mw": 5}}, "exactly one of gpus, mw or site"),
        ({"capacity": {"site": "s1", "pue": 1.1}}, "a site brings its own"),
        ({"capacity": {"gpus": 1}, "model": {"tokens_per_s": 5, "input_tokens_per_s": 5}}, "give"),
        ({"capacity": {"gpus": 1}, "model": {"output_tokens_per_s": 5}}, "go together"),
        (
            {"capacity": {"gpus": 1}, "load": {"peak_to_off_peak": 2, "hourly": [1] * 24}},
            "not both",
        ),
        ({"capacity": []}, "at least 1"),
    ],
)
def test_malformed_requests_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LimitsRequest.model_validate(body)


def test_a_files_errors_name_the_line() -> None:
    text = "capacity:\n  - {gpus: 10}\ntiers:\n  - {name: a, users: 0, weight: 1}\n"
    with pytest.raises(InvalidInput, match=r"line 4: tiers\[0\]\.users"):
        load_request(text)
    text = "capacity:\n  - {gpus: 10}\nadd:\n  capacity: {gpus: 5}\n  tiers: [gold]\n"
    req = load_request(text)
    with pytest.raises(InvalidInput) as err:
        core.usage_limits(to_question(req))
    assert with_lines(err.value, text).detail.startswith("line 5: add.tiers.0: no tier")


def test_the_worked_example_of_docs_limits_md() -> None:
    story = Path(__file__).parents[2] / "docs" / "limits-story.yaml"
    req = load_request(story.read_text())
    out = core.usage_limits(to_question(req))
    assert out["change"]["added_gpus"] == 226_560
    assert out["change"]["capacity_multiplier"] == pytest.approx(8.01, abs=0.005)
    pro = [tier(out[at], "pro")["messages_per_5h"]["peak"] for at in ("before", "after")]
    assert pro == [52, 417]
    assert tier(out["before"], "pro")["messages_per_week"] == 888
    assert out["after"]["fleet"]["concurrent_streams"] == pytest.approx(13.1e6, rel=0.01)
    assert req.add is not None
    req.add.tiers = ["pro", "max"]
    some = core.usage_limits(to_question(req))
    assert tier(some["after"], "pro")["messages_per_5h"]["peak"] == 756
    assert numbers(tier(some["after"], "free")) == numbers(tier(some["before"], "free"))
