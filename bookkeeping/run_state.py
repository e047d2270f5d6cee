"""A run's records: the earlier run of the same inputs continued (or archived with --fresh), a seed's
context (seed_models.SeedContext) with what its models need of the records (SeedRecords), an earlier
run's finished models reused, and each model's record written into results.json as soon as it is
measured. Nothing here changes a number."""
import os
from types import SimpleNamespace


import measurement
import reports
import processes
from bookkeeping import ledger
from bookkeeping import run_identity
from seed_models import SeedContext
from processes import log


def earlier_run(cfg, previous, identity, skipped):
    """The earlier run's results to continue ({} when there is none, or with --fresh), on every process."""
    if processes.is_main():  # every input checked: only now may --fresh archive
        earlier = ledger.start_or_continue(cfg, previous, identity, skipped, log)
        run_identity.claim_checkpoints(cfg, identity, log)
    processes.barrier()
    if not processes.is_main():  # after the main process has archived (--fresh) or checked the old run
        unfresh = SimpleNamespace(**{**vars(cfg), "FRESH": False})
        earlier = ledger.start_or_continue(unfresh, ledger.earlier_results(unfresh), identity, skipped, log)
    return earlier


def seed_context(experiment, seed):
    folder = os.path.join(experiment.cfg.CHECKPOINT_DIR, f"seed{seed}")
    os.makedirs(folder, exist_ok=True)
    return SeedContext(seed=seed, folder=folder, cfg=experiment.cfg, loaders=experiment.loaders,
                       device=experiment.device, inputs=experiment.inputs,
                       train_efs=experiment.splits["train"].efs,
                       records=SeedRecords(folder, experiment.cfg, experiment.inputs.identity))


class SeedRecords:
    """What a seed's models need of the run's records (SeedContext.records): each model's training state,
    checked as this run's before it is continued, its epoch log, and the stamp of its checkpoint."""

    def __init__(self, folder, cfg, identity):
        self.folder, self.identity = folder, identity
        self.stamp = {"config_hash": run_identity.config_hash(cfg), "identity": identity["id"]}

    def training_state(self, name):
        """Where `name`'s training state goes, an earlier one checked (another run's refused, a damaged
        one set aside) on the main process while the others wait."""
        path = ledger.training_state_path(self.folder, name)
        if processes.is_main():
            run_identity.check_training_state(path, self.identity, log)
        processes.barrier()
        return path

    def epoch_log(self, name):
        return ledger.epoch_log_path(self.folder, name)


def reused(experiment, ctx, name):
    """(record, model) of a model an earlier run finished, or None (ledger.reuse)."""
    return ledger.reuse(experiment.done, name, ctx.seed, ctx.cfg, ctx.folder, identity=ctx.inputs.identity,
                        log=log, device=ctx.device, main=processes.is_main())


def finished(experiment, record, folder, phase):
    """A model's record into results.json as soon as it is measured."""
    results = experiment.results
    results["models"].append(ledger.relative_paths(record, experiment.cfg.RESULTS_DIR))
    experiment.clock.lap(phase)
    if processes.is_main():  # earlier records not reused yet stay in results.json
        reports.write_results(ledger.with_earlier(results, experiment.earlier), experiment.cfg.RESULTS_DIR,
                              summary=False)
        ledger.forget_training_state(folder, record["name"])  # only now: the record is safe
        if "seconds_training" in record:
            log(measurement.time_line(record))
