"""DP-SGD through Opacus: ε accounting that anyone can recompute, refusal to overspend."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.errors import ConfigError, PrivacyBudgetExceeded
from steward.train import run
from steward.train.privacy import spent_epsilon
from tests.train.conftest import copy_run, train_cfg


def test_dp_lora_reports_the_epsilon_the_accountant_computes(demo_data_run: Path, tiny_model: Path,
                                                            tmp_path: Path) -> None:
    from opacus.accountants import RDPAccountant

    run_dir = copy_run(demo_data_run, tmp_path / "run")
    m = run(train_cfg(run_dir, tiny_model, method="lora", epochs=2,
                      privacy={"enabled": True, "target_epsilon": 8.0})).manifest
    p = m["privacy"]
    assert p["enabled"] and p["accountant"] == "rdp"
    assert p["delta"] == pytest.approx(1 / m["train_rows"])
    steps = sum(h[2] for h in p["history"])
    assert steps == m["global_steps"]
    # An independent accountant fed the same sampling rate, noise and steps gives the same ε.
    fresh = RDPAccountant()
    fresh.history = [(p["noise_multiplier"], p["sample_rate"], steps)]
    assert p["epsilon"] == pytest.approx(fresh.get_epsilon(delta=p["delta"]), abs=1e-3)
    assert 7.0 < p["epsilon"] <= 8.0  # the whole budget was planned for the two epochs, never more
    assert [h["epsilon"] for h in m["history"]] == sorted(h["epsilon"] for h in m["history"])  # spent grows
    assert m["parameters"]["trainable"] < m["parameters"]["total"] / 10  # only adapters and head privatised


def test_dp_full_fine_tuning_works(demo_data_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    m = run(train_cfg(run_dir, tiny_model, method="full", epochs=1,
                      privacy={"enabled": True, "target_epsilon": 4.0})).manifest
    assert 3.0 < m["privacy"]["epsilon"] <= 4.0


def test_epsilon_too_small_is_refused_up_front(demo_data_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"needs noise multiplier σ=.*Raise target_epsilon"):
        run(train_cfg(run_dir, tiny_model, epochs=1, privacy={"enabled": True, "target_epsilon": 0.001}))
    assert not (run_dir / "train").exists()


def test_no_step_past_the_budget() -> None:
    """The guard refuses the step that would overspend, naming what was spent."""
    from types import SimpleNamespace

    from steward.train.privacy import PrivacyState

    sigma, q, delta = 1.0, 0.05, 1e-5
    steps_to_spend = 100
    target = spent_epsilon("rdp", [(sigma, q, steps_to_spend)], delta)
    engine = SimpleNamespace(accountant=SimpleNamespace(history=[(sigma, q, steps_to_spend - 1)]))
    state = PrivacyState(engine, "rdp", target, delta, sigma, q, 1.0)
    state.check_next_step()  # the 100th step lands exactly on the target
    engine.accountant.history = [(sigma, q, steps_to_spend)]
    with pytest.raises(PrivacyBudgetExceeded) as info:
        state.check_next_step()
    assert info.value.epsilon_spent == pytest.approx(target)
    assert "raise train.privacy.target_epsilon" in str(info.value)


def test_calibration_never_plans_past_the_target() -> None:
    """75 batches x 3 epochs: Opacus alone plans 224 steps and lands at ε 8.0068 for 225; ours stays ≤ 8."""
    from steward.train.config import PrivacySettings
    from steward.train.privacy import calibrate_sigma

    cfg = PrivacySettings(enabled=True, target_epsilon=8.0)
    delta = 1 / 19141
    sigma, err = calibrate_sigma(cfg, delta=delta, batches_per_epoch=75, epochs=3)
    assert err is None
    spent = spent_epsilon("rdp", [(sigma, 1 / 75, 225)], delta)
    assert 7.95 < spent <= 8.0
