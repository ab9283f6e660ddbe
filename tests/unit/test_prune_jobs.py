"""Background prunes for the Prune page (ui.prune_jobs): one job per spec, the evaluated view
before the report, errors kept for the page that waits, the table emptied when a job ends."""
from __future__ import annotations

import threading

from ui.prune_jobs import PruneJob, PruneJobs


def test_the_view_comes_before_the_report_and_one_job_serves_a_spec():
    jobs, release, runs = PruneJobs(), threading.Event(), []

    def run(job: PruneJob) -> str:
        runs.append(job.key)
        job.on_progress(0.5, "pruning")
        job.on_evaluated({"phase": "evaluated", "sparsity": 0.5})
        assert release.wait(10)
        return "report"

    job = jobs.start("spec-a", run)
    while job.view is None:
        job.wait(0.05)
    assert job.view == {"phase": "evaluated", "sparsity": 0.5} and job.progress == (0.5, "pruning")
    assert job.report is None and not job.done
    assert jobs.start("spec-a", run) is job and jobs.running("spec-a") is job  # joined, not started again
    release.set()
    while not job.done:
        job.wait(0.05)
    assert job.report == "report" and job.error is None and runs == ["spec-a"]
    assert jobs.running("spec-a") is None  # ended: the next start of this spec runs it again
    assert jobs.start("spec-a", lambda j: "again") is not job


def test_an_error_is_kept_for_the_page_and_the_spec_can_be_retried():
    jobs = PruneJobs()

    def fail(job: PruneJob) -> str:
        raise ValueError("bad spec")

    job = jobs.start("spec-b", fail)
    while not job.done:
        job.wait(0.05)
    assert isinstance(job.error, ValueError) and str(job.error) == "bad spec" and job.report is None
    assert job.view is None and jobs.running("spec-b") is None


def test_wait_returns_at_its_timeout_when_nothing_happens():
    job = PruneJob("k")
    assert not job.done
    job.wait(0.01)  # returns: nothing reported
    job.on_evaluated({"a": 1})
    assert job.view == {"a": 1} and not job.done


def test_the_measured_report_is_ready_before_its_file_is_stored():
    # the page draws the full report as soon as it is measured; writing the run's model file
    # (seconds on a large model) goes on in the job, and the stored report comes after
    jobs, saving = PruneJobs(), threading.Event()

    def run(job: PruneJob) -> str:
        job.on_evaluated({"phase": "evaluated"})
        job.on_measured("measured report")
        assert saving.wait(10)
        return "stored report"

    job = jobs.start("spec-c", run)
    while not job.ready:
        job.wait(0.05)
    assert job.measured == "measured report" and job.shown() == "measured report"
    assert not job.done and job.report is None and jobs.running("spec-c") is job  # still storing
    saving.set()
    while not job.done:
        job.wait(0.05)
    assert job.shown() == "stored report" and job.ready and jobs.running("spec-c") is None
