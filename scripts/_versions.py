"""Delete the gateway function's old published versions: `scripts/deploy` runs it after a deploy.

Every deploy publishes a version (template.yaml: AutoPublishAlias `live`) and
SAM retains each one, so that a rollback has somewhere to go. With SnapStart
every version also keeps a cached snapshot, billed for as long as the version
exists. Kept: every version an alias points at or routes traffic to (a
gradual deployment in progress routes to two), and the newest `keep`
(rollback targets); the rest are deleted. `$LATEST` is never touched.

    python scripts/_versions.py FUNCTION_NAME [--keep 3] [--region R] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys


def versions_to_delete(versions: list[str], aliased: set[str], keep: int) -> list[str]:
    """The numbered versions neither aliased nor among the newest `keep`, oldest first."""
    numbered = sorted((v for v in versions if v.isdigit()), key=int)
    newest = set(numbered[-keep:]) if keep > 0 else set()
    return [v for v in numbered if v not in newest and v not in aliased]


def _pages(call, key: str, **kwargs) -> list[dict]:
    found, marker = [], None
    while True:
        page = call(**kwargs, **({"Marker": marker} if marker else {}))
        found += page[key]
        marker = page.get("NextMarker")
        if not marker:
            return found


def aliased_versions(aliases: list[dict]) -> set[str]:
    """Versions an alias points at, or sends a share of its traffic to (a canary)."""
    used = set()
    for alias in aliases:
        used.add(alias["FunctionVersion"])
        used.update((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}))
    return used


def prune(lambda_client, function_name: str, *, keep: int = 3, dry_run: bool = False) -> list[str]:
    versions = [v["Version"] for v in _pages(lambda_client.list_versions_by_function, "Versions",
                                             FunctionName=function_name)]
    aliases = _pages(lambda_client.list_aliases, "Aliases", FunctionName=function_name)
    doomed = versions_to_delete(versions, aliased_versions(aliases), keep)
    if not dry_run:
        for version in doomed:
            lambda_client.delete_function(FunctionName=function_name, Qualifier=version)
    return doomed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("function_name")
    parser.add_argument("--keep", type=int, default=3, help="newest versions kept besides aliased ones")
    parser.add_argument("--region")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    import boto3

    client = boto3.client("lambda", region_name=args.region)
    doomed = prune(client, args.function_name, keep=args.keep, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{args.function_name}: {verb} {len(doomed)} old version(s)"
          + (f" ({', '.join(doomed)})" if doomed else "") + f"; kept the aliased ones and the newest {args.keep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
