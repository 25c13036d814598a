"""When model calls run inline on the engine loop and when on the batch threads."""

from __future__ import annotations

from tfserve_lab.core.call_costs import IDLE_INLINE_BELOW, PROBE_BELOW, PROBE_EVERY, WINDOW, CallCosts

KEY = ("servable", "serving_default")
LIMIT = 0.001


def test_unknown_calls_go_to_the_threads_until_measured() -> None:
    costs = CallCosts(LIMIT)
    assert not costs.cheap(KEY)
    assert costs.estimate(KEY) is None
    costs.record(KEY, 0.0003)
    assert costs.cheap(KEY)
    assert costs.estimate(KEY) == 0.0003


def test_a_few_preempted_calls_do_not_send_a_cheap_model_to_the_threads() -> None:
    costs = CallCosts(LIMIT)
    for _ in range(WINDOW):
        costs.record(KEY, 0.0003)
    for _ in range(WINDOW // 2):  # a minority of outliers, ten times the real cost
        costs.record(KEY, 0.003)
        assert costs.cheap(KEY)
    costs.record(KEY, 0.003)  # now most of the window is slow: the model really got slower
    assert not costs.cheap(KEY)


def test_moderately_expensive_calls_are_probed_inline_once_in_a_while() -> None:
    costs = CallCosts(LIMIT)
    costs.record(KEY, LIMIT * 2)
    decisions = [costs.cheap(KEY) for _ in range(PROBE_EVERY * 3)]
    assert decisions.count(True) == 3
    assert decisions[PROBE_EVERY - 1]
    assert not any(decisions[: PROBE_EVERY - 1])
    # The probe measured it cheap (it had only waited for the GIL on a thread): inline from now on.
    for _ in range(WINDOW):
        costs.record(KEY, 0.0003)
    assert costs.cheap(KEY)


def test_expensive_calls_never_run_inline() -> None:
    costs = CallCosts(LIMIT)
    costs.record(KEY, LIMIT * PROBE_BELOW * 2)
    assert not any(costs.cheap(KEY) for _ in range(PROBE_EVERY * 4))


def test_forget_drops_the_measurements() -> None:
    costs = CallCosts(LIMIT)
    costs.record(KEY, 0.0003)
    costs.forget(KEY)
    assert not costs.cheap(KEY)


def test_idle_inline_takes_moderate_calls_but_not_long_or_unknown_ones() -> None:
    costs = CallCosts(LIMIT)
    assert not costs.idle_inline(KEY)  # unmeasured
    costs.record(KEY, LIMIT * IDLE_INLINE_BELOW / 2)
    assert costs.idle_inline(KEY)
    assert not costs.cheap(KEY)
    for _ in range(WINDOW):
        costs.record(KEY, LIMIT * IDLE_INLINE_BELOW * 2)
    assert not costs.idle_inline(KEY)
