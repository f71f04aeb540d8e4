"""gateway-admin: the operator's CLI for keys and metered usage.

Talks to whatever AWS endpoint boto3 is configured for (AWS_ENDPOINT_URL
points it at a moto server locally). A new key is printed once and only its
hash is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from . import aws, price_map
from .config import Settings
from .keys import hash_key, new_key, new_key_id
from .ledger import Ledger
from .providers import build_catalogue


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _empty_keys() -> dict:
    return {"keys": []}


def _load_keys(settings: Settings) -> dict:
    document, _ = aws.read_json_secret_version(settings.keys_secret_id)
    return document or _empty_keys()


def _public(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "hash"}


def create_key(settings: Settings, *, name: str, models: list[str] | None, limits: dict) -> dict:
    key = new_key()
    entry = {"key_id": new_key_id(), "hash": hash_key(key), "name": name,
             "status": "active", "created_at": _now()}
    if models:
        entry["models"] = models
    if limits:
        entry["limits"] = limits
    aws.update_json_secret(settings.keys_secret_id, lambda document: document.setdefault("keys", []).append(entry),
                           empty=_empty_keys)
    return {"key": key, **_public(entry)}


def list_keys(settings: Settings) -> list[dict]:
    return [_public(entry) for entry in _load_keys(settings).get("keys", [])]


def revoke_key(settings: Settings, key_id: str) -> dict:
    def revoke(document: dict) -> dict:
        for entry in document.get("keys", []):
            if entry.get("key_id") == key_id:
                entry["status"] = "revoked"
                entry["revoked_at"] = _now()
                return _public(entry)
        raise LookupError(f"no key with id {key_id!r}")

    return aws.update_json_secret(settings.keys_secret_id, revoke, empty=_empty_keys)


def set_providers(settings: Settings, document: dict) -> dict:
    """Check the providers document as the gateway will read it, then store it."""
    catalogue = build_catalogue(document, price_map.load())
    if not catalogue.providers:
        raise LookupError("the document configures no provider")
    if not catalogue.models:
        raise LookupError("no model is served: list `models` or configure a provider litellm prices")
    aws.write_json_secret(settings.providers_secret_id, document)
    return describe_providers(catalogue)


def show_providers(settings: Settings) -> dict:
    return describe_providers(build_catalogue(aws.read_json_secret(settings.providers_secret_id), price_map.load()))


def describe_providers(catalogue) -> dict:
    """Providers and models, never credentials."""
    return {
        "providers": {name: {"type": p.type, "api_base": p.api_base, "api_key": "set" if p.api_key else "none"}
                      for name, p in catalogue.providers.items()},
        "models": sorted(catalogue.models),
    }


def usage_reports(settings: Settings, *, key_id: str | None, month: str) -> list[dict]:
    ledger = Ledger(settings.usage_table)
    key_ids = [key_id] if key_id else [entry["key_id"] for entry in list_keys(settings)]
    return [ledger.month_report(k, month) for k in key_ids]


def replay(settings: Settings) -> dict:
    if not settings.ledger_queue_url:
        raise LookupError("GATEWAY_LEDGER_QUEUE_URL is not set: no fallback queue to replay")
    return Ledger(settings.usage_table, ttl_days=settings.usage_ttl_days,
                  queue_url=settings.ledger_queue_url).replay()


def _usage_text(reports: list[dict]) -> str:
    lines = [f"{'key_id':20} {'month':8} {'requests':>9} {'input':>12} {'output':>12} "
             f"{'cache_write':>12} {'cache_read':>12} {'cost_usd':>12}"]
    for report in reports:
        t = report["totals"]
        lines.append(f"{report['key_id']:20} {report['month']:8} {t['requests']:>9} {t['input_tokens']:>12} "
                     f"{t['output_tokens']:>12} {t['cache_creation_input_tokens']:>12} "
                     f"{t['cache_read_input_tokens']:>12} {t['cost_usd']:>12.6f}")
    return "\n".join(lines)


def _limits(args: argparse.Namespace) -> dict:
    limits = {"rpm": args.rpm, "monthly_tokens": args.monthly_tokens, "monthly_usd": args.monthly_usd}
    return {name: value for name, value in limits.items() if value is not None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway-admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="create, list and revoke caller keys")
    key_commands = keys.add_subparsers(dest="action", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--models", nargs="+", metavar="GLOB", help="allow-list, e.g. 'anthropic/*'")
    create.add_argument("--rpm", type=int)
    create.add_argument("--monthly-tokens", type=int)
    create.add_argument("--monthly-usd", type=float)
    create.add_argument("--json", action="store_true")
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true")
    providers = commands.add_parser("providers", help="set or show the providers secret")
    provider_commands = providers.add_subparsers(dest="action", required=True)
    setting = provider_commands.add_parser("set", help="check a providers document and store it")
    setting.add_argument("--file", required=True, help="JSON document (see README: Secrets)")
    setting.add_argument("--json", action="store_true")
    showing = provider_commands.add_parser("show", help="providers and models (never keys)")
    showing.add_argument("--json", action="store_true")
    usage = commands.add_parser("usage", help="metered usage per key, or replay the fallback queue")
    usage.add_argument("--key-id", help="one key (default: every key)")
    usage.add_argument("--month", help="YYYY-MM (default: this month, UTC)")
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
                [f"provider {n}: type={d['type']} api_base={d['api_base'] or 'default'} key={d['api_key']}"
                 for n, d in described["providers"].items()]
                + [f"{len(described['models'])} models"]))
            return 0
        if args.command == "usage":
            if args.action == "replay":
                counts = replay(settings)
                _print(counts, args.json, ", ".join(f"{k}: {v}" for k, v in counts.items()))
                return 0 if not counts["failed"] else 3
            month = args.month or datetime.now(timezone.utc).strftime("%Y-%m")
            reports = usage_reports(settings, key_id=args.key_id, month=month)
            _print(reports if not args.key_id else reports[0], args.json, _usage_text(reports))
        elif args.action == "create":
            created = create_key(settings, name=args.name, models=args.models, limits=_limits(args))
            _print(created, args.json,
                   f"key_id: {created['key_id']}\nkey:    {created['key']}\n"
                   "(shown once: store it now; only its hash is kept)")
        elif args.action == "list":
            entries = list_keys(settings)
            rows = [f"{e['key_id']}  {e.get('status', 'active'):8}  {e.get('name', '')}" for e in entries]
            _print(entries, args.json, "\n".join(rows) or "(no keys)")
        elif args.action == "revoke":
            revoked = revoke_key(settings, args.key_id)
            _print(revoked, args.json, f"revoked {revoked['key_id']}")
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
