"""The keys secrets as an operator changes them (gateway-admin keys ...).

Every write is a compare-and-swap on one shard secret (aws.update_json_secret),
re-run on the newer document when another writer got there first; a write
that finds its shard marked `moved_to` (a reshard ran) goes to the new layout
instead (keys/shards.py). A key is printed once; only its hash is stored.

Entries carry `key_id`, `hash`, `name`, `status`, `created_at` and optionally
`models`, `limits`, `expires_at`. Rotating a key adds an entry for the new
value under the same `key_id` (usage stays on one id) and gives the old entry
`expires_at` (the end of its grace) and `retired_at`; listings show the
current entry only, and a retired entry past its grace is dropped on the next
write to its shard.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from .. import aws
from . import shards as key_shards
from .store import hash_key, new_key, new_key_id, parse_time

UNSET: Any = object()  # an update leaves the field as it is


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `12h`, `7d` (or a bare number of seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 12h, 7d)")
    return timedelta(seconds=float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]])


def parse_expiry(text: str | None) -> str | None:
    """An ISO 8601 moment (UTC if no zone given) or `never`, as stored."""
    if text is None or text.lower() == "never":
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def public(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "hash"}


def _empty() -> dict:
    return {"keys": []}


class _Moved(Exception):
    def __init__(self, count: int) -> None:
        self.count = count


class _Stale(Exception):
    """A shard changed between copying its entries and marking it moved."""


def _guarded(change: Callable[[dict], Any]) -> Callable[[dict], Any]:
    def guarded(document: dict) -> Any:
        moved = key_shards.moved_to(document)
        if moved is not None:
            raise _Moved(moved)
        document.setdefault("keys", [])
        return change(document)
    return guarded


Checkpoint = Callable[[str, str], None]


class KeysAdmin:
    """The operator's writes to one deployment's keys secrets.

    `checkpoint(step, detail)` is called between the steps that other writers
    may interleave with: "read" (a command has read the entries it will change;
    detail: the base secret), "copied" and "marked" (a reshard has copied a
    shard's entries, then marked it moved; detail: that shard's secret id).
    Tests hold a command there to run another one in between.
    """

    def __init__(self, secret_id: str, *, checkpoint: Checkpoint | None = None) -> None:
        self.base = secret_id
        self._checkpoint = checkpoint or (lambda step, detail: None)

    # ------------------------------------------------------------- layout

    def layout(self) -> int:
        """The current shard count: the base secret's moved_to marks, followed."""
        count, document = 1, aws.read_json_secret_version(self.base)[0]
        for _ in range(key_shards.MAX_HOPS):
            moved = key_shards.moved_to(document)
            if moved is None:
                return count
            count = moved
            document = aws.read_json_secret_version(key_shards.shard_secret_id(self.base, count, 0))[0]
        raise LookupError("the keys secrets' moved_to marks form a chain too long to follow")

    def _shard_ids(self, count: int) -> list[str]:
        return [key_shards.shard_secret_id(self.base, count, index) for index in range(count)]

    def entries(self) -> list[tuple[str, dict]]:
        """(shard secret id, entry) for every entry, reading the shards in batches."""
        found: dict[str, tuple[str, dict]] = {}
        count = self.layout()
        for _ in range(key_shards.MAX_HOPS):
            moved_layouts = set()
            for secret_id, document in aws.read_json_secrets(self._shard_ids(count)).items():
                if key_shards.moved_to(document):  # a reshard under way: these are in the next layout
                    moved_layouts.add(key_shards.moved_to(document))
                for entry in (document or {}).get("keys", []):
                    found[entry.get("hash")] = (secret_id, entry)
            if not moved_layouts:
                break
            count = max(moved_layouts)
        return list(found.values())

    def _write(self, count: int, digests_to_changes: dict[str, Callable[[dict], Any]]) -> dict[str, Any]:
        """Apply per-digest changes, one CAS write per shard, following moved layouts."""
        results: dict[str, Any] = {}
        pending = dict(digests_to_changes)
        for _ in range(key_shards.MAX_HOPS):
            groups: dict[str, list[str]] = defaultdict(list)
            for digest in pending:
                groups[key_shards.shard_of(self.base, count, digest)].append(digest)
            moved_to = None
            for secret_id, digests in groups.items():
                def change(document: dict, digests=digests) -> dict[str, Any]:
                    return {digest: pending[digest](document) for digest in digests}
                try:
                    results.update(aws.update_json_secret(secret_id, _guarded(change), empty=_empty))
                    for digest in digests:
                        del pending[digest]
                except _Moved as moved:
                    moved_to = moved.count
            if not pending:
                return results
            count = moved_to or count
        raise LookupError("the keys secrets kept moving; run the command again")

    # ------------------------------------------------------------- commands

    def create(self, *, name: str, models: list[str] | None = None, limits: dict | None = None,
               expires_at: str | None = None, count: int = 1) -> list[dict]:
        """`count` keys (named name-00001... when more than one), one write per shard touched."""
        created, changes = [], {}
        for number in range(1, count + 1):
            key = new_key()
            entry = {"key_id": new_key_id(), "hash": hash_key(key), "status": "active", "created_at": iso(now()),
                     "name": name if count == 1 else f"{name}-{number:0{len(str(count))}d}"}
            if models:
                entry["models"] = list(models)
            if limits:
                entry["limits"] = dict(limits)
            if expires_at:
                entry["expires_at"] = expires_at
            created.append({"key": key, **public(entry)})
            changes[entry["hash"]] = lambda document, entry=entry: _upsert(document, entry)
        self._write(self.layout(), changes)
        return created

    def list(self) -> list[dict]:
        return sorted((public(entry) for _, entry in self.entries() if "retired_at" not in entry),
                      key=lambda entry: (entry.get("created_at", ""), entry.get("key_id", "")))

    def show(self, key_id: str) -> dict:
        current, retired = self._find(key_id)
        return {**public(current), "retired_values": [public(entry) for entry in retired]}

    def _find(self, key_id: str) -> tuple[dict, list[dict]]:
        mine = [entry for _, entry in self.entries() if entry.get("key_id") == key_id]
        current = [entry for entry in mine if "retired_at" not in entry]
        if not current:
            raise LookupError(f"no key with id {key_id!r}")
        return current[0], [entry for entry in mine if "retired_at" in entry]

    def _edit(self, key_ids: list[str], edit: Callable[[dict], None]) -> list[dict]:
        """Apply `edit` to every entry (current and rotated-out) of each key id."""
        by_id = defaultdict(list)
        for _, entry in self.entries():
            by_id[entry.get("key_id")].append(entry)
        missing = [key_id for key_id in key_ids if key_id not in by_id]
        if missing:
            raise LookupError(f"no key with id {missing[0]!r}" if len(missing) == 1
                              else f"no keys with ids {', '.join(map(repr, missing))}")
        changes = {entry["hash"]: lambda document, digest=entry["hash"]: _apply(document, digest, edit)
                   for key_id in key_ids for entry in by_id[key_id]}
        self._checkpoint("read", self.base)
        edited = self._write(self.layout(), changes)
        return [public(entry) for entry in edited.values() if entry is not None and "retired_at" not in entry]

    def revoke(self, key_ids: list[str]) -> list[dict]:
        stamp = iso(now())

        def revoke(entry: dict) -> None:
            entry["status"] = "revoked"
            entry.setdefault("revoked_at", stamp)
        return self._edit(key_ids, revoke)

    def update(self, key_id: str, *, name: Any = UNSET, models: Any = UNSET, limits: dict | None = None,
               expires_at: Any = UNSET) -> dict:
        """Change what is given; a limit set to None is removed, models=None allows every model."""
        def update(entry: dict) -> None:
            if name is not UNSET and "retired_at" not in entry:
                entry["name"] = name
            if models is not UNSET:
                _set(entry, "models", list(models) if models is not None else None)
            for limit, value in (limits or {}).items():
                entry.setdefault("limits", {})
                _set(entry["limits"], limit, value)
            if "limits" in entry and not entry["limits"]:
                del entry["limits"]
            if expires_at is not UNSET and "retired_at" not in entry:
                _set(entry, "expires_at", expires_at)
            entry["updated_at"] = iso(now())
        [updated] = self._edit([key_id], update)
        return updated

    def rotate(self, key_id: str, *, grace: timedelta) -> dict:
        """A new value for the key id; the old one works until the grace ends (then 401, like expiry)."""
        current, _ = self._find(key_id)
        self._checkpoint("read", self.base)
        key = new_key()
        if current.get("status", "active") != "active":
            raise ValueError(f"key {key_id!r} is {current.get('status')}: it cannot be rotated")
        fresh = {k: v for k, v in current.items() if k not in ("hash", "updated_at")}
        fresh.update(hash=hash_key(key), rotated_at=iso(now()))
        ends = now() + grace
        old_expiry = parse_time(current.get("expires_at"))
        ends_at = iso(ends if old_expiry is None or ends.timestamp() < old_expiry
                      else datetime.fromtimestamp(old_expiry, timezone.utc))

        def retire(entry: dict) -> None:
            entry["expires_at"] = ends_at
            entry["retired_at"] = iso(now())
        # The new value first: were the second write to fail, both values work and nothing is locked out.
        self._write(self.layout(), {fresh["hash"]: lambda document: _upsert(document, fresh)})
        self._write(self.layout(), {current["hash"]: lambda document: _apply(document, current["hash"], retire)})
        return {"key": key, **public(fresh), "previous_value_expires_at": ends_at}

    def reshard(self, count: int) -> dict:
        """Move every entry to a layout of `count` shards; the old shards point there."""
        if not 1 <= count <= 4096:
            raise ValueError("the shard count must be between 1 and 4096")
        old = self.layout()
        if count == old:
            return {"from": old, "to": count, "moved": 0}
        new_ids = self._shard_ids(count)
        for secret_id in new_ids:  # every shard exists, so a gateway never mistakes "empty" for "missing"
            if not aws.ensure_json_secret(secret_id, _empty()):
                aws.update_json_secret(secret_id, _clear_stale_mark, empty=_empty)
        moved = 0
        for secret_id in self._shard_ids(old):
            while True:
                document = aws.read_json_secret_version(secret_id)[0] or _empty()
                if key_shards.moved_to(document) == count:
                    break
                entries = list(document.get("keys", []))
                if entries:
                    self._write(count, {entry["hash"]: lambda doc, entry=entry: _upsert(doc, entry)
                                        for entry in entries})
                self._checkpoint("copied", secret_id)
                try:
                    aws.update_json_secret(secret_id, _mark_moved(entries, count), empty=_empty)
                except _Stale:
                    continue  # a writer changed the shard meanwhile: copy again
                self._checkpoint("marked", secret_id)
                moved += len(entries)
                break
        return {"from": old, "to": count, "moved": moved}


def _set(mapping: dict, name: str, value: Any) -> None:
    if value is None:
        mapping.pop(name, None)
    else:
        mapping[name] = value


def _upsert(document: dict, entry: dict) -> dict:
    document["keys"] = [e for e in document["keys"] if e.get("hash") != entry["hash"]] + [entry]
    _drop_expired_rotations(document)
    return entry


def _apply(document: dict, digest: str, edit: Callable[[dict], None]) -> dict | None:
    for entry in document["keys"]:
        if entry.get("hash") == digest:
            edit(entry)
            return entry
    return None  # gone meanwhile (a concurrent reshard copies it again)


def _drop_expired_rotations(document: dict) -> None:
    """A rotated-out value past its grace can never authenticate again: its entry goes."""
    moment = now().timestamp()

    def spent(entry: dict) -> bool:
        try:
            ends = parse_time(entry.get("expires_at"))
        except ValueError:
            return False  # not ours to judge: the gateway refuses it, the operator sees it
        return "retired_at" in entry and ends is not None and ends <= moment
    document["keys"] = [entry for entry in document["keys"] if not spent(entry)]


def _clear_stale_mark(document: dict) -> None:
    document.pop("moved_to", None)  # left by an earlier reshard away from this layout
    document.setdefault("keys", [])


def _mark_moved(entries: list[dict], count: int) -> Callable[[dict], None]:
    def mark(document: dict) -> None:
        if document.get("keys", []) != entries:
            raise _Stale()
        document["keys"] = []
        document["moved_to"] = count
    return mark
