"""``contrastkit.experiments.results``: the report's tables, an arm's probes, an experiment's status and section."""

from __future__ import annotations

import math

import pytest

from contrastkit.experiments.results import ArmResult, ExperimentResult, markdown_table


def test_markdown_table_and_arm_probe() -> None:
    table = markdown_table(["arm", "top-1", "steps"], [["a", 61.456, 3], ["b", math.nan, 4]])
    assert table.splitlines() == ["| arm | top-1 | steps |", "| --- | --- | --- |", "| a | 61.46 | 3 |",
                                  "| b | – | 4 |"]
    arm = ArmResult(name="a", probes={"linear/digit": 61.5}, steps=1, seconds=0.0, final_metrics={}, run_dir="x")
    assert arm.probe("linear", "digit") == 61.5 and math.isnan(arm.probe("knn", "digit"))


@pytest.mark.parametrize(("reproduced", "status"), [(True, "reproduced"), (False, "not reproduced"),
                                                    (None, "smoke run")])
def test_experiment_result_status_and_markdown(reproduced: bool | None, status: str) -> None:
    result = ExperimentResult(name="x", title="T", paper="P", criterion="C", reproduced=reproduced, verdict="V 1.5",
                              table="| t |", plot="plot.png", seconds=90.0, budget_seconds=1800.0, quick=False,
                              command="contrastkit experiment x", data={}, device="cpu (2 threads)")
    assert result.status == status
    page = result.markdown(plot_link="p/x.png", heading="##")
    assert page.startswith("## `x`: T\n") and f"**Result: {status}.** V 1.5" in page
    assert "![x](p/x.png)" in page and "ran in 1.5 min (budget 30 min) on cpu (2 threads)" in page
    assert "![" not in result.markdown()


def test_parallel_runs_report_both_the_summed_training_time_and_the_wall_clock() -> None:
    """The budget is judged on the summed time of every run; ``--jobs`` adds the wall-clock beside it."""
    result = ExperimentResult(name="x", title="T", paper="P", criterion="C", reproduced=False, verdict="V",
                              table="| t |", plot="plot.png", seconds=2400.0, budget_seconds=1800.0, quick=False,
                              command="contrastkit experiment x --jobs 2", data={}, jobs=2, wall_seconds=1260.0)
    assert result.over_budget
    assert ("ran in 40.0 min (budget 30 min; **over budget**), 2 runs at a time (this invocation: 21.0 min "
            "wall-clock)") in result.markdown()
    one = ExperimentResult(**{**result.as_dict(), "jobs": 1})
    assert "at a time" not in one.markdown()
