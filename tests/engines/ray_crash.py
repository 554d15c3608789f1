"""A Ray worker setup hook for the tests: a worker that sees the marker file deletes it and dies mid-shard, once."""
import os

CRASH_ONCE_ENV = "STREAMTAG_TEST_CRASH_ONCE"  # a marker path, inherited by the Ray workers


def install() -> None:
    """Run in every Ray worker at start (`runtime_env={"worker_process_setup_hook": install}`)."""
    from streamtag.engines import ray_engine

    tag = ray_engine.ShardWorker.__call__

    def crash_once(self, batch):
        marker = os.environ.get(CRASH_ONCE_ENV)
        if marker and os.path.exists(marker):
            os.unlink(marker)
            os._exit(1)  # a worker dying mid-shard: Ray must restart the actor and retry the shard
        return tag(self, batch)

    ray_engine.ShardWorker.__call__ = crash_once
