"""Cache and data roots resolve from one place, with the documented precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.settings import Settings, WandbMode, get_settings, main, reset_settings


def test_defaults_hang_off_one_cache_root(tmp_path: Path) -> None:
    s = Settings.from_env({"XDG_CACHE_HOME": str(tmp_path)})
    root = tmp_path / "gate-harness"
    assert s.cache_dir == root
    assert s.data_dir == root / "data"
    assert s.models_dir == root / "models"
    assert s.wandb_dir == root / "wandb"
    assert s.generations_dir == root / "generations"
    assert s.sandbox_dir == root / "sandbox"
    assert s.wandb_mode is WandbMode.OFFLINE
    assert set(s.sources.values()) == {"default"}


def test_canonical_names_win_over_legacy_ones(tmp_path: Path) -> None:
    env = {
        "HARNESS_CACHE_DIR": str(tmp_path / "new"),
        "GATE_HARNESS_CACHE": str(tmp_path / "old"),
        "HARNESS_MODEL_CACHE": str(tmp_path / "models-old"),
    }
    s = Settings.from_env(env)
    assert s.cache_dir == tmp_path / "new"
    assert s.sources["cache_dir"] == "HARNESS_CACHE_DIR"
    assert s.models_dir == tmp_path / "models-old"
    assert s.sources["models_dir"] == "HARNESS_MODEL_CACHE"
    legacy = Settings.from_env({"GATE_HARNESS_CACHE": str(tmp_path / "old")})
    assert legacy.sandbox_dir == tmp_path / "old" / "sandbox"  # where the image cache was


def test_cache_root_override_moves_only_that_cache(tmp_path: Path) -> None:
    s = Settings.from_env({"HARNESS_CACHE_DIR": str(tmp_path)})
    assert s.cache("generations", root=tmp_path / "cli") == tmp_path / "cli" / "generations"
    assert s.cache("generations") == tmp_path / "generations"


def test_wandb_mode_is_validated() -> None:
    assert Settings.from_env({"WANDB_MODE": "disabled"}).wandb_mode is WandbMode.DISABLED
    assert Settings.from_env({"WANDB_MODE": "dryrun"}).wandb_mode is WandbMode.OFFLINE
    with pytest.raises(HarnessError, match="WANDB_MODE='loud'"):
        Settings.from_env({"WANDB_MODE": "loud"})


def test_read_once_until_reset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "a"))
    reset_settings()
    try:
        first = get_settings()
        monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "b"))
        assert get_settings() is first
        reset_settings()
        assert get_settings().cache_dir == tmp_path / "b"
    finally:
        monkeypatch.undo()
        reset_settings()


def test_main_prints_one_value_for_shell_scripts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    reset_settings()
    try:
        assert main(["data_dir"]) == 0
        assert capsys.readouterr().out.strip() == str(tmp_path)
        assert main(["nope"]) == 2
        assert main([]) == 0
        assert "cache_dir" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        reset_settings()


def test_declared_variables_are_read_through_settings_and_others_refused() -> None:
    from harness.settings import OPTION_VARS

    s = Settings.from_env({"HARNESS_SANDBOX": "local", "DOCKER_HOST": " ", "NOT_OURS": "x"})
    assert s.env("HARNESS_SANDBOX") == "local"
    assert s.env("DOCKER_HOST") is None  # blank counts as unset
    assert "NOT_OURS" not in s.options and set(s.options) <= set(OPTION_VARS)
    with pytest.raises(HarnessError, match=r"not declared in harness\.settings\.OPTION_VARS"):
        s.env("NOT_OURS")


def test_every_variable_and_setting_is_in_the_one_table() -> None:
    """docs/settings.md is the one documented table: every setting and variable is in it."""
    from harness.settings import ENV_NAMES, OPTION_VARS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text("utf-8")
    names = [*ENV_NAMES, *(v for vs in ENV_NAMES.values() for v in vs), *OPTION_VARS]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"add {missing} to docs/settings.md"


def test_no_cache_flag_from_env_and_configure_and_refresh_once_per_run() -> None:
    from harness.cachekey import refresh_requested, run_stamp
    from harness.settings import configure, get_settings, reset_settings

    assert Settings.from_env({"HARNESS_NO_CACHE": "1", "HARNESS_RUN_ID": "r"}).no_cache
    assert not Settings.from_env({}).no_cache
    with pytest.raises(HarnessError, match="HARNESS_NO_CACHE"):
        Settings.from_env({"HARNESS_NO_CACHE": "maybe"})
    reset_settings()
    try:
        if not get_settings().no_cache:  # the environment of this test run may set it
            assert not refresh_requested(None) and not refresh_requested("any")
        configure(no_cache=True, run_id="run-1")
        assert get_settings().no_cache and run_stamp() == "run-1"
        assert refresh_requested(None) and refresh_requested("run-0")
        assert not refresh_requested("run-1")  # rebuilt by this run already: reuse
    finally:
        reset_settings()


def test_child_environment_drops_prefixes() -> None:
    from harness.settings import child_environment

    env = child_environment(drop_prefixes=("PATH",))
    assert "PATH" not in env and all(not k.startswith("PATH") for k in env)


def test_suites_no_cache_option_sets_the_one_settings_flag(pytester: pytest.Pytester) -> None:
    """``harness run --no-cache`` → pytest ``--no-cache`` → suites/conftest.py configures
    ``settings.no_cache`` with the run's id, which every cache consults."""
    root = Path(__file__).resolve().parents[2]
    pytester.makeconftest((root / "suites" / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(
        test_flag="""
        from harness.settings import get_settings

        def test_flag(no_cache):
            s = get_settings()
            assert no_cache and s.no_cache and s.run_id
        """
    )
    try:
        assert pytester.runpytest_inprocess("--no-cache", "-p", "no:cacheprovider").ret == 0
        reset_settings()
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
        assert result.ret == 1  # without the flag nothing is refreshed
    finally:
        reset_settings()
