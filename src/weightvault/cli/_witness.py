"""`weightvault witness init|vkey|add-log|logs|run|serve`: a witness that cosigns the vault's log.

For these commands ``--home`` is the witness's own home (default
``WEIGHTVAULT_WITNESS_HOME``), not the vault's; ``run`` finds the store as any
command does (``--vault-home``, ``WEIGHTVAULT_*``, weightvault.toml).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _home(args: argparse.Namespace) -> Path:
    from weightvault.lifecycle.witness import witness_home

    return witness_home(Path(args.home) if args.home else None)


def _init(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.records import Witness

    witness = Witness.create(_home(args), args.name)
    emit(args, witness.vkey, {"name": witness.name, "vkey": witness.vkey})
    return 0


def _vkey(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.lifecycle.witness import open_witness

    witness = open_witness(_home(args))
    emit(args, witness.vkey, {"name": witness.name, "vkey": witness.vkey})
    return 0


def _add_log(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.lifecycle.witness import open_witness

    witness = open_witness(_home(args))
    witness.add_log(args.origin, list(args.vkey))
    emit(
        args,
        f"witness {witness.name} now witnesses {args.origin} ({len(args.vkey)} keys)",
        {"origin": args.origin, "vkeys": list(args.vkey)},
    )
    return 0


def _logs(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit_table
    from weightvault.lifecycle.witness import open_witness

    witness = open_witness(_home(args))
    rows: list[list[object]] = []
    data: list[dict[str, object]] = []
    for origin, vkeys in sorted(witness.logs().items()):
        latest = witness.latest(origin)
        size = latest.size if latest else None
        rows.append([origin, "-" if size is None else size, len(vkeys)])
        data.append({"origin": origin, "vkeys": vkeys, "cosigned_size": size})
    emit_table(args, ["origin", "cosigned size", "keys"], rows, data, empty="no logs witnessed")
    return 0


def _run(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.config import load_settings
    from weightvault.lifecycle import witness as steps
    from weightvault.logs import register_secret

    home = _home(args)
    settings = load_settings(home=Path(args.vault_home) if args.vault_home else None)
    if settings.store.secret_key:
        register_secret(settings.store.secret_key)
    witness = steps.open_witness(home)
    store, bucket = steps.open_log_store(settings)
    result = steps.cosign(witness, store, bucket)
    emit(
        args,
        f"witness {result.witness} cosigned {result.origin} at size {result.size} "
        f"(was {result.old_size}), published at {result.published}",
        result.to_dict(),
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from weightvault.errors import UsageError
    from weightvault.lifecycle.witness import open_witness
    from weightvault.records import WitnessServer

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--listen {args.listen!r} is not HOST:PORT")
    server = WitnessServer(open_witness(_home(args)), (host, int(port)))
    print(f"witness {server.witness.name} listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``witness`` command group."""
    group = sub.add_parser(
        "witness",
        help="a witness that cosigns the transparency log",
        description="A c2sp tlog-witness of the vault's log. For these commands --home is "
        "the witness's own home (default WEIGHTVAULT_WITNESS_HOME), not the vault's.",
        parents=[common],
    )
    wsub = group.add_subparsers(dest="witness_command", metavar="ACTION", parser_class=type(group))
    wsub.required = True
    p = wsub.add_parser(
        "init", help="create a witness and its key; prints its vkey", parents=[common]
    )
    p.add_argument("--name", required=True, help="the witness's key name, e.g. example.org/w1")
    p.set_defaults(func=_init)
    p = wsub.add_parser("vkey", help="print the witness's verifier key", parents=[common])
    p.set_defaults(func=_vkey)
    p = wsub.add_parser("add-log", help="witness a log: its origin and keys", parents=[common])
    p.add_argument("--origin", required=True, help="the log's origin line")
    p.add_argument(
        "--vkey", action="append", required=True, help="a verifier key of the log (repeat)"
    )
    p.set_defaults(func=_add_log)
    p = wsub.add_parser(
        "logs", help="the logs witnessed and their cosigned sizes", parents=[common]
    )
    p.set_defaults(func=_logs)
    p = wsub.add_parser(
        "run", help="one round: check the store's log and cosign it", parents=[common]
    )
    p.add_argument("--vault-home", help="vault home whose settings name the store")
    p.set_defaults(func=_run)
    p = wsub.add_parser(
        "serve", help="the c2sp tlog-witness HTTP API (add-checkpoint)", parents=[common]
    )
    p.add_argument("--listen", default="127.0.0.1:7380", help="HOST:PORT (default 127.0.0.1:7380)")
    p.set_defaults(func=_serve)
