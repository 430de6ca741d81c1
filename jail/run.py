"""One run of a built jail, in order: the log, the workspace layer, the network, the interposer,
the supervisor, the summary.

Every route that runs a jail (`shelljail run`, the lab, git for snapshots, the reference agent)
loads a profile, builds a spec and calls `supervise` with a RunOptions: nothing here reads the
command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jail.errors import EXIT_SETUP, JailError


class RunOptions(NamedTuple):
    interposing: bool  # shells in the jail lead to the decision service
    timeout: float | None = None  # the wall time, seconds
    ask: str = "tty"  # how an `ask` is answered: tty (and the CLI, the dashboard) or deny
    dry_run: bool = False  # shell commands that write are reported, not run
    recorder: Any = None  # a learning run's recorder of seccomp notifications
    on_log: Callable[[Any], None] | None = None  # called with the session's log once it is open
    exiting: bool = False  # the process ends with the run (`shelljail run`): a slow close may be left to its exit


def supervise(loaded: Any, jail_spec: Any, options: RunOptions) -> tuple[int, str]:
    """Run a built jail with its log, its services and approvals; (exit status, log directory)."""
    from jail.supervisor import parent as supervisor
    from jail.supervisor import session

    log = session.start(loaded, jail_spec, options.interposing)
    if options.on_log is not None:
        options.on_log(log)
    if loaded.filesystem.workspace == "overlay":
        from jail.recovery import overlay

        jail_spec = overlay.attach(jail_spec, log)
    network_proxy = None
    if loaded.network.mode == "proxy":
        from jail.supervisor import proxy

        jail_spec, network_proxy = proxy.attach(jail_spec, loaded.network, log)
    decision_service = timeline = None
    if options.interposing:
        from interposer import service as decisions
        from jail.recovery import timeline as timelines
        from jail.recovery.trash import for_session
        from jail.supervisor.approvals import Broker

        broker = Broker(log.directory, log, options.ask, loaded.interposer.ask_timeout)
        trash, jail_spec = for_session(loaded, jail_spec, log)
        timeline = None if options.dry_run else timelines.for_session(loaded, jail_spec, log)
        jail_spec, decision_service = decisions.attach(jail_spec, loaded.interposer, lambda event: log.event(**event),
                                                       broker.ask, options.dry_run, trash, loaded.network, log,
                                                       timeline)
        if network_proxy is not None and options.ask != "deny":  # a person may let this session reach a host
            from jail.supervisor.hostgrants import HostGrants

            decision_service.hosts = HostGrants(network_proxy)
    # Threads start after the jail's processes are forked (a fork copies no thread, and no lock one holds).
    pruned: list[Callable[[], None]] = []  # the wait for the pruning of old sessions, once started
    after_fork = (*(start for start in (network_proxy and network_proxy.start, timeline and timeline.start)
                    if start), lambda: pruned.append(session.prune()))
    try:
        code = supervisor.run(jail_spec, options.timeout, decision_service, log, options.recorder, after_fork)
    except JailError as exc:
        session.end(log, getattr(exc, "code", EXIT_SETUP), str(exc))
        raise
    finally:
        if decision_service is not None:
            decision_service.close()
        if network_proxy is not None:
            network_proxy.close()
        if timeline is not None:
            timeline.finish(options.exiting)
        for wait in pruned:
            wait()
    if loaded.filesystem.workspace == "overlay":
        from jail.recovery import overlay

        overlay.summarize(log, jail_spec.view.workspace)
    session.end(log, code, None)
    return code, log.directory
