"""gateway-admin: the operator's CLI for keys and metered usage.

Talks to whatever AWS endpoint boto3 is configured for (AWS_ENDPOINT_URL
points it at a moto server locally). A new key is printed once and only its
hash is stored.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from typing import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .config import Settings
from .keys.admin import UNSET, KeysAdmin, parse_duration, parse_expiry
from .keys.store import ApiKey
from .metering import hot_keys, usage_report
from .metering.items import REPORT_FIELDS
from .metering.ledger import Ledger
from .providers import price_map
from .providers.catalogue import build_catalogue, checked_aliases, checked_chains, provider_problems
from .providers.families import family


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _keys(settings: Settings) -> KeysAdmin:
    return KeysAdmin(settings.keys_secret_id)


def create_key(settings: Settings, *, name: str, models: list[str] | None, limits: dict) -> dict:
    """One new key, printed once (scripts/devstack.py and the benchmark make theirs this way)."""
    return _keys(settings).create(name=name, models=models, limits=limits)[0]


def set_providers(settings: Settings, document: dict) -> dict:
    """Check the providers document as the gateway will read it, then store it."""
    problems = [f"provider {name!r}: {problem}" for name, conf in (document.get("providers") or {}).items()
                for problem in provider_problems(name, conf) + _unknown_fields(name, conf)]
    if problems:
        raise ValueError("; ".join(problems))
    catalogue = build_catalogue(document, price_map.load())
    if not catalogue.providers:
        raise LookupError("the document configures no provider")
    if not catalogue.models:
        raise LookupError("no model is served: list `models` or configure a provider litellm prices")
    problems = checked_aliases(document, catalogue)[1] + checked_chains(document, catalogue)[1]
    if problems:
        raise ValueError("; ".join(problems))
    aws.write_json_secret(settings.providers_secret_id, document)
    return describe_providers(catalogue)


def show_providers(settings: Settings) -> dict:
    return describe_providers(build_catalogue(aws.read_json_secret(settings.providers_secret_id), price_map.load()))


def _unknown_fields(name: str, conf) -> list[str]:
    unknown = family(str(conf.get("type") or name)).unknown_fields(conf) if isinstance(conf, dict) else []
    return [f"unknown field(s) {', '.join(unknown)} for its type"] if unknown else []


def _credentials(provider) -> str:
    """What signs the provider's calls, by name, never by value: its credential fields that are
    set (`api_key` for most types, `credentials`, a service account's key, for Vertex), or the
    function's IAM role (Bedrock), or none."""
    fields = provider.family.credentials
    if not fields:
        return "iam-role"
    present = [name for name in fields if (provider.api_key if name == "api_key" else provider.settings.get(name))]
    return ",".join(present) or "none"


def describe_providers(catalogue) -> dict:
    """Providers, models and aliases, never credentials (of any type: `family.credentials`)."""
    def shown(p) -> dict:
        hidden = set(p.family.credentials)
        settings = {k: ("set" if k in hidden else v) for k, v in p.settings.items()}
        return {"type": p.type, "api_base": p.api_base, "api_key": "set" if p.api_key else "none", **settings,
                "credentials": _credentials(p)}

    return {
        "providers": {name: shown(p) for name, p in catalogue.providers.items()},
        "models": sorted(catalogue.models),
        "aliases": dict(sorted(catalogue.aliases.items())),  # each to the catalogue id it serves
    }


def usage_table(settings: Settings, *, month: str, top: int | None = None) -> list[dict]:
    """Every key's month, dearest first: one BatchGetItem per 100 keys (metering/usage_report.py)."""
    keys = _keys(settings).list()
    totals = usage_report.key_totals(settings.usage_table, keys, month)
    return [{**row, "month": month} for row in usage_report.rows(keys, totals, top=top)]


def key_usage(settings: Settings, *, key_id: str, month: str) -> dict:
    """One key's month with a row per day (a busy key's ledger shards summed)."""
    entry = _keys(settings).show(key_id)
    key = ApiKey(key_id=key_id, name=entry.get("name", ""), limits=dict(entry.get("limits") or {}))
    return hot_keys.month_report(Ledger(settings.usage_table), key, month)


def replay(settings: Settings) -> dict:
    if not settings.ledger_queue_url:
        raise LookupError("GATEWAY_LEDGER_QUEUE_URL is not set: no fallback queue to replay")
    return Ledger(settings.usage_table, ttl_days=settings.usage_ttl_days,
                  queue_url=settings.ledger_queue_url).replay()


def _usage_command(args: argparse.Namespace, settings: Settings) -> tuple[object, str]:
    month = args.month or datetime.now(timezone.utc).strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"--month must look like YYYY-MM, not {month!r}")
    if args.key_id:
        report = key_usage(settings, key_id=args.key_id, month=month)
        days = report["days"]
        if args.csv:
            return report, usage_report.as_csv(days, ("date", *REPORT_FIELDS))
        return report, (f"{report['key_id']} {month}\n"
                        + usage_report.as_text([*days, {"date": "total", **report["totals"]}], first="date"))
    table = usage_table(settings, month=month, top=args.top)
    if args.csv:
        return table, usage_report.as_csv(table, ("month", *usage_report.COLUMNS))
    return table, usage_report.as_text(table)


def _limits(args: argparse.Namespace) -> dict:
    limits = {"rpm": args.rpm, "monthly_tokens": args.monthly_tokens, "monthly_usd": args.monthly_usd,
              "ledger_shards": args.ledger_shards}
    return {name: value for name, value in limits.items() if value is not None}


def _or_none(kind):
    """A limit's value on `keys update`, or `none` to remove the limit."""
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _key_options(command: argparse.ArgumentParser, *, update: bool) -> None:
    kind, default = (_or_none, UNSET) if update else ((lambda k: k), None)
    command.add_argument("--models", nargs="+", metavar="GLOB", help="allow-list, e.g. 'anthropic/*'")
    command.add_argument("--rpm", type=kind(int), default=default, help="none (on update) removes the limit")
    command.add_argument("--monthly-tokens", type=kind(int), default=default)
    command.add_argument("--monthly-usd", type=kind(float), default=default)
    command.add_argument("--ledger-shards", type=kind(int), default=default, metavar="S",
                         help="a busy key: spread its usage items over S (README, Capacity); set it before "
                              "the month's traffic, a change restarts the month's caps in the new shards")
    command.add_argument("--expires-at", metavar="ISO8601" + ("|never" if update else ""),
                         help="the key stops working then (401, like a revoked key); UTC if no zone")
    command.add_argument("--default-fallbacks", choices=("on", "off"), default=None if update else "on",
                         help="a request without `fallbacks` runs its model's default chain (providers "
                              "secret `fallbacks`)" + ("" if update else "; default on"))
    command.add_argument("--json", action="store_true")


def _key_command(args: argparse.Namespace, keys: KeysAdmin) -> tuple[object, str]:
    """(result, text) of one `keys` action."""
    shards = getattr(args, "ledger_shards", None)
    if isinstance(shards, int) and not 1 <= shards <= hot_keys.MAX_SHARDS:
        raise ValueError(f"--ledger-shards must be between 1 and {hot_keys.MAX_SHARDS}")
    if args.action == "create":
        created = keys.create(name=args.name, models=args.models, limits=_limits(args),
                              expires_at=parse_expiry(args.expires_at), count=args.count,
                              default_fallbacks=args.default_fallbacks == "on")
        if args.count == 1:
            return created[0], (f"key_id: {created[0]['key_id']}\nkey:    {created[0]['key']}\n"
                                "(shown once: store it now; only its hash is kept)")
        return created, "\n".join(f"{c['key_id']} {c['key']}" for c in created)
    if args.action == "list":
        entries = keys.list()
        rows = [f"{e['key_id']}  {e.get('status', 'active'):8}  {e.get('name', '')}" for e in entries]
        return entries, "\n".join(rows) or "(no keys)"
    if args.action == "show":
        shown = keys.show(args.key_id)
        return shown, "\n".join(f"{name}: {value}" for name, value in shown.items())
    if args.action == "revoke":
        key_ids = list(args.key_ids)
        if args.file:
            with open(args.file, encoding="utf-8") as handle:
                key_ids += [line.strip() for line in handle if line.strip()]
        if not key_ids:
            raise LookupError("name the keys to revoke: KEY_ID ... or --file")
        revoked = keys.revoke(key_ids)
        return (revoked[0] if len(revoked) == 1 else revoked), "\n".join(f"revoked {r['key_id']}" for r in revoked)
    if args.action == "update":
        models = None if args.all_models else (args.models if args.models else UNSET)
        limits = {name: value for name, value in
                  {"rpm": args.rpm, "monthly_tokens": args.monthly_tokens, "monthly_usd": args.monthly_usd,
                   "ledger_shards": args.ledger_shards}.items()
                  if value is not UNSET}
        expires = UNSET if args.expires_at is None else parse_expiry(args.expires_at)
        updated = keys.update(args.key_id, name=args.name if args.name is not None else UNSET, models=models,
                              limits=limits, expires_at=expires,
                              default_fallbacks=UNSET if args.default_fallbacks is None
                              else args.default_fallbacks == "on")
        return updated, f"updated {updated['key_id']}"
    if args.action == "rotate":
        rotated = keys.rotate(args.key_id, grace=parse_duration(args.grace))
        return rotated, (f"key_id: {rotated['key_id']}\nkey:    {rotated['key']}\n"
                         f"(shown once; the previous value works until {rotated['previous_value_expires_at']})")
    moved = keys.reshard(args.shards)
    return moved, (f"keys moved from {moved['from']} to {moved['to']} shard(s): {moved['moved']} entries; "
                   f"now set GATEWAY_KEY_SHARDS={moved['to']} on the gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway-admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="create, change, rotate and revoke caller keys")
    key_commands = keys.add_subparsers(dest="action", required=True)
    create = key_commands.add_parser("create", help="create keys and print them once")
    create.add_argument("--name", required=True)
    create.add_argument("--count", type=int, default=1, help="bulk: this many keys, named NAME-0001 ...")
    _key_options(create, update=False)
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    show = key_commands.add_parser("show", help="one key's entry (never its secret)")
    show.add_argument("key_id")
    show.add_argument("--json", action="store_true")
    revoke = key_commands.add_parser("revoke", help="revoke keys by id")
    revoke.add_argument("key_ids", nargs="*", metavar="KEY_ID")
    revoke.add_argument("--file", help="key ids, one a line")
    revoke.add_argument("--json", action="store_true")
    update = key_commands.add_parser("update", help="change a key's name, models, limits or expiry")
    update.add_argument("key_id")
    update.add_argument("--name")
    update.add_argument("--all-models", action="store_true", help="drop the allow-list")
    _key_options(update, update=True)
    rotate = key_commands.add_parser("rotate", help="a new secret value for the same key id")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", default="0s", help="how long the old value keeps working, e.g. 1h (default 0s)")
    rotate.add_argument("--json", action="store_true")
    reshard = key_commands.add_parser("reshard", help="spread the keys over N secrets (migrates a single secret)")
    reshard.add_argument("--shards", type=int, help="default: GATEWAY_KEY_SHARDS")
    reshard.add_argument("--json", action="store_true")
    providers = commands.add_parser("providers", help="set or show the providers secret")
    provider_commands = providers.add_subparsers(dest="action", required=True)
    setting = provider_commands.add_parser("set", help="check a providers document and store it")
    setting.add_argument("--file", required=True, help="JSON document (see README: Secrets)")
    setting.add_argument("--json", action="store_true")
    showing = provider_commands.add_parser("show", help="providers and models (never keys)")
    showing.add_argument("--json", action="store_true")
    usage = commands.add_parser("usage", help="metered usage per key, or replay the fallback queue")
    usage.add_argument("--key-id", help="one key, a row per day (default: every key, dearest first)")
    usage.add_argument("--month", help="YYYY-MM (default: this month, UTC)")
    usage.add_argument("--top", type=int, metavar="N", help="only the N dearest keys")
    usage.add_argument("--csv", action="store_true", help="CSV instead of a table")
    usage.add_argument("--json", action="store_true")
    usage.add_argument("action", nargs="?", choices=["replay"],
                       help="replay: write back ledger entries queued while DynamoDB failed")
    return parser


def _print(result, as_json: bool, text: str) -> None:
    print(json.dumps(result, indent=2) if as_json else text)


def run(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or Settings.from_env()
    try:
        if args.command == "providers":
            if args.action == "set":
                with open(args.file, encoding="utf-8") as handle:
                    described = set_providers(settings, json.load(handle))
            else:
                described = show_providers(settings)
            _print(described, args.json, "\n".join(
                [f"provider {n}: type={d['type']} api_base={d['api_base'] or 'default'} credentials={d['credentials']}"
                 for n, d in described["providers"].items()]
                + [f"{len(described['models'])} models"]
                + [f"alias {alias} -> {target}" for alias, target in described["aliases"].items()]))
            return 0
        if args.command == "usage":
            if args.action == "replay":
                counts = replay(settings)
                _print(counts, args.json, ", ".join(f"{k}: {v}" for k, v in counts.items()))
                return 0 if not counts["failed"] else 3
            result, text = _usage_command(args, settings)
            _print(result, args.json, text.rstrip("\n"))
        else:
            if args.action == "reshard" and args.shards is None:
                args.shards = settings.key_shards
            result, text = _key_command(args, _keys(settings))
            _print(result, args.json, text)
    except (LookupError, ValueError, OSError, aws.SecretConflict) as exc:
        print(f"gateway-admin: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"gateway-admin: AWS call failed: {exc}", file=sys.stderr)
        return 2
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
