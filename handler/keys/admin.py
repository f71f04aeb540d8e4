"""The keys secrets as an operator changes them (gateway-admin keys ...).

Every write is a compare-and-swap on one shard secret (aws.update_json_secret),
re-run on the newer document when another writer got there first. It starts
where the entry was read (a new key: at the keys secret) and follows each
shard's `moved_to` mark (keys/shards.py), so it lands in the one shard holding
its entry now, even while a reshard runs; a
reshard copies a shard again if it changed before being marked, and its copy
never replaces a later `revision` of an entry. A key is printed once; only its
hash is stored.

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
    return {k: v for k, v in entry.items() if k not in ("hash", "revision")}


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
    detail: the base secret), "copying", "copied" and "marked" (a reshard has
    read a shard, copied its entries, then marked it moved; detail: that
    shard's secret id).
    Tests hold a command there to run another one in between.
    """

    def __init__(self, secret_id: str, *, checkpoint: Checkpoint | None = None) -> None:
        self.base = secret_id
        self._checkpoint = checkpoint or (lambda step, detail: None)

    # ------------------------------------------------------------- layout

    def _shard_ids(self, count: int) -> list[str]:
        return [key_shards.shard_secret_id(self.base, count, index) for index in range(count)]

    def _layouts(self) -> list[tuple[int, dict[str, dict | None]]]:
        """Every layout the moved_to marks reach from the keys secret, oldest first, with its shards' documents.

        More than one holds entries while a reshard runs (or after one stopped
        midway): a shard not yet marked still holds its keys, and a shard of
        the new layout names the layouts it takes entries from (`moving_from`).
        """
        layouts, queue, seen = [], [1], {1}
        while queue:
            if len(layouts) > 2 * key_shards.MAX_HOPS:
                raise LookupError("the keys secrets' moved_to marks reach too many layouts to follow")
            count = queue.pop(0)
            documents = aws.read_json_secrets(self._shard_ids(count))
            layouts.append((count, documents))
            for document in documents.values():
                for later in [key_shards.moved_to(document), *key_shards.moving_from(document)]:
                    if later is not None and later not in seen:
                        seen.add(later)
                        queue.append(later)
        return layouts

    def entries(self) -> list[tuple[int, dict]]:
        """(layout, entry) for every entry, each from the shard that holds it, where its writes start.

        That is its oldest shard not marked moved: a reshard's copy of an entry
        in the next layout is not the entry until its old shard is marked.
        """
        found: dict[str, tuple[int, dict]] = {}
        for count, documents in self._layouts():
            for document in documents.values():
                if key_shards.moved_to(document) is None:
                    for entry in (document or {}).get("keys", []):
                        found.setdefault(entry.get("hash"), (count, entry))
        return list(found.values())

    def _write(self, digests_to_changes: dict[str, Callable[[dict], Any]], *, count: int = 1,
               found_in: dict[str, int] | None = None) -> dict[str, Any]:
        """Apply per-digest changes, one CAS write per shard, following each shard's moved_to mark.

        Each digest starts in the layout its entry was found in (`found_in`),
        else in that of `count` (the keys secret unless a reshard copies into
        its new layout), and follows the marks from there,
        as a gateway does: it lands in the one shard that holds its entry now,
        whichever shards a running reshard has marked so far.
        """
        results: dict[str, Any] = {}
        pending = {digest: (found_in or {}).get(digest, count) for digest in digests_to_changes}
        for _ in range(key_shards.MAX_HOPS + 1):
            groups: dict[str, list[str]] = defaultdict(list)
            for digest, layout in pending.items():
                groups[key_shards.shard_of(self.base, layout, digest)].append(digest)
            for secret_id, digests in groups.items():
                def change(document: dict, digests=digests) -> dict[str, Any]:
                    return {digest: digests_to_changes[digest](document) for digest in digests}
                try:
                    results.update(aws.update_json_secret(secret_id, _guarded(change), empty=_empty))
                    for digest in digests:
                        del pending[digest]
                except _Moved as moved:
                    for digest in digests:
                        pending[digest] = moved.count
            if not pending:
                return results
        raise LookupError("the keys secrets kept moving; run the command again")

    # ------------------------------------------------------------- commands

    def create(self, *, name: str, models: list[str] | None = None, limits: dict | None = None,
               expires_at: str | None = None, count: int = 1, default_fallbacks: bool = True) -> list[dict]:
        """`count` keys (named name-00001... when more than one), one write per shard touched; a
        new key runs its models' default chains unless told not to."""
        created, changes = [], {}
        for number in range(1, count + 1):
            key = new_key()
            entry = {"key_id": new_key_id(), "hash": hash_key(key), "status": "active", "created_at": iso(now()),
                     "name": name if count == 1 else f"{name}-{number:0{len(str(count))}d}",
                     "default_fallbacks": default_fallbacks}
            if models:
                entry["models"] = list(models)
            if limits:
                entry["limits"] = dict(limits)
            if expires_at:
                entry["expires_at"] = expires_at
            created.append({"key": key, **public(entry)})
            changes[entry["hash"]] = lambda document, entry=entry: _upsert(document, entry)
        self._write(changes)
        return created

    def list(self) -> list[dict]:
        return sorted((public(entry) for _, entry in self.entries() if "retired_at" not in entry),
                      key=lambda entry: (entry.get("created_at", ""), entry.get("key_id", "")))

    def show(self, key_id: str) -> dict:
        current, retired, _ = self._find(key_id)
        return {**public(current), "retired_values": [public(entry) for entry in retired]}

    def _find(self, key_id: str) -> tuple[dict, list[dict], int]:
        """The key's current entry, its rotated-out ones, and the layout holding the current one."""
        mine = [(layout, entry) for layout, entry in self.entries() if entry.get("key_id") == key_id]
        current = [(layout, entry) for layout, entry in mine if "retired_at" not in entry]
        if not current:
            raise LookupError(f"no key with id {key_id!r}")
        return current[0][1], [entry for _, entry in mine if "retired_at" in entry], current[0][0]

    def _edit(self, key_ids: list[str], edit: Callable[[dict], None]) -> list[dict]:
        """Apply `edit` to every entry (current and rotated-out) of each key id."""
        by_id, found_in = defaultdict(list), {}
        for layout, entry in self.entries():
            by_id[entry.get("key_id")].append(entry)
            found_in[entry["hash"]] = layout
        missing = [key_id for key_id in key_ids if key_id not in by_id]
        if missing:
            raise LookupError(f"no key with id {missing[0]!r}" if len(missing) == 1
                              else f"no keys with ids {', '.join(map(repr, missing))}")
        changes = {entry["hash"]: lambda document, digest=entry["hash"]: _apply(document, digest, edit)
                   for key_id in key_ids for entry in by_id[key_id]}
        self._checkpoint("read", self.base)
        edited = self._write(changes, found_in=found_in)
        lost = [entry["key_id"] for key_id in key_ids for entry in by_id[key_id]
                if "retired_at" not in entry and edited.get(entry["hash"]) is None]
        if lost:  # its entry left the shard it was read from, and no mark says where to
            raise LookupError(f"key {lost[0]!r} changed while being written; run the command again")
        for _ in range(key_shards.MAX_HOPS):  # a value a rotation added meanwhile gets the same edit
            wanted = set(key_ids)
            located = [(layout, entry) for layout, entry in self.entries()
                       if entry.get("key_id") in wanted and entry["hash"] not in edited]
            if not located:
                break
            edited.update(self._write({entry["hash"]: lambda document, digest=entry["hash"]: _apply(
                document, digest, edit) for _, entry in located},
                found_in={entry["hash"]: layout for layout, entry in located}))
        return [public(entry) for entry in edited.values() if entry is not None and "retired_at" not in entry]

    def revoke(self, key_ids: list[str]) -> list[dict]:
        stamp = iso(now())

        def revoke(entry: dict) -> None:
            entry["status"] = "revoked"
            entry.setdefault("revoked_at", stamp)
        return self._edit(key_ids, revoke)

    def update(self, key_id: str, *, name: Any = UNSET, models: Any = UNSET, limits: dict | None = None,
               expires_at: Any = UNSET, default_fallbacks: Any = UNSET) -> dict:
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
            if default_fallbacks is not UNSET:
                entry["default_fallbacks"] = bool(default_fallbacks)
            entry["updated_at"] = iso(now())
        [updated] = self._edit([key_id], update)
        return updated

    def rotate(self, key_id: str, *, grace: timedelta) -> dict:
        """A new value for the key id; the old one works until the grace ends (then 401, like expiry)."""
        current, _, layout = self._find(key_id)
        self._checkpoint("read", self.base)
        key = new_key()
        if current.get("status", "active") != "active":
            raise ValueError(f"key {key_id!r} is {current.get('status')}: it cannot be rotated")
        fresh = {k: v for k, v in current.items() if k not in ("hash", "updated_at", "revision")}
        fresh.update(hash=hash_key(key), rotated_at=iso(now()))
        ends = now() + grace
        old_expiry = parse_time(current.get("expires_at"))
        ends_at = iso(ends if old_expiry is None or ends.timestamp() < old_expiry
                      else datetime.fromtimestamp(old_expiry, timezone.utc))

        def retire(entry: dict) -> None:
            entry["expires_at"] = ends_at
            entry["retired_at"] = iso(now())
        # The new value first: were the second write to fail, both values work and nothing is locked out.
        self._write({fresh["hash"]: lambda document: _upsert(document, fresh)})
        retired = self._write({current["hash"]: lambda document: _apply(document, current["hash"], retire)},
                              found_in={current["hash"]: layout}).get(current["hash"])
        if retired is None:
            raise LookupError(f"key {key_id!r} changed while being rotated; both values work: run it again")
        if retired.get("revision", 0) - 1 != current.get("revision", 0):  # revoked or updated since it was read
            self._write({fresh["hash"]: lambda document: _apply(document, fresh["hash"], _same_as(retired))})
            if retired.get("status", "active") != "active":
                raise ValueError(f"key {key_id!r} was {retired.get('status')} during the rotation: "
                                 "its new value is too")
        return {"key": key, **public(fresh), "previous_value_expires_at": ends_at}

    def reshard(self, count: int) -> dict:
        """Move every entry to a layout of `count` shards; each old shard, once copied, points there.

        Every shard not yet marked moved, in every layout the marks reach, is
        copied then marked, one at a time: run again after a stop midway, it
        copies the rest, and every entry ends in one layout.
        """
        if not 1 <= count <= 4096:
            raise ValueError("the shard count must be between 1 and 4096")
        layouts = self._layouts()
        sources = [(layout, secret_id) for layout, documents in layouts if layout != count
                   for secret_id, document in documents.items() if key_shards.moved_to(document) is None]
        if not sources:
            return {"from": count, "to": count, "moved": 0}
        from_layouts = sorted({layout for layout, _ in sources})
        # Every new shard exists, so a gateway never mistakes "empty" for "missing", and names the layouts its
        # entries come from until all are copied: a gateway already on the new count looks there meanwhile.
        for secret_id in self._shard_ids(count):
            if not aws.ensure_json_secret(secret_id, {"keys": [], "moving_from": from_layouts}):
                document = aws.read_json_secret_version(secret_id)[0]
                if key_shards.moved_to(document) is not None or \
                        not set(from_layouts) <= set(key_shards.moving_from(document)):
                    aws.update_json_secret(secret_id, _reopen(from_layouts), empty=_empty)
        moved = sum(self._move_shard(secret_id, count) for _, secret_id in sources)
        for secret_id, document in aws.read_json_secrets(self._shard_ids(count)).items():
            if key_shards.moving_from(document):  # every entry is back: the old layouts need not be read
                aws.update_json_secret(secret_id, _closed, empty=_empty)
        return {"from": sources[0][0], "to": count, "moved": moved}

    def _move_shard(self, secret_id: str, count: int) -> int:
        """Copy one shard's entries into the layout of `count`, then mark it moved (if unchanged meanwhile)."""
        for _ in range(12):
            document = aws.read_json_secret_version(secret_id)[0] or _empty()
            if key_shards.moved_to(document) is not None:
                return 0  # another run of the reshard moved it meanwhile
            entries = list(document.get("keys", []))
            self._checkpoint("copying", secret_id)
            if entries:
                self._write({entry["hash"]: lambda doc, entry=entry: _merge(doc, entry) for entry in entries},
                            count=count)
            self._checkpoint("copied", secret_id)
            try:
                aws.update_json_secret(secret_id, _mark_moved(entries, count), empty=_empty)
            except _Stale:
                continue  # a writer changed the shard meanwhile: copy again
            self._checkpoint("marked", secret_id)
            return len(entries)
        raise aws.SecretConflict(f"{secret_id} kept changing while it was copied; run the reshard again")


def _set(mapping: dict, name: str, value: Any) -> None:
    if value is None:
        mapping.pop(name, None)
    else:
        mapping[name] = value


def _upsert(document: dict, entry: dict) -> dict:
    document["keys"] = [e for e in document["keys"] if e.get("hash") != entry["hash"]] + [entry]
    _drop_expired_rotations(document)
    return entry


def _same_as(changed: dict) -> Callable[[dict], None]:
    """A rotation's new value takes what a revoke or update made of the old one meanwhile."""
    def same(entry: dict) -> None:
        for name in ("status", "revoked_at", "name", "models", "limits"):
            _set(entry, name, changed.get(name))
    return same


def _merge(document: dict, entry: dict) -> dict:
    """A reshard's copy of an entry: it never replaces a later revision of it already there."""
    there = next((e for e in document["keys"] if e.get("hash") == entry["hash"]), None)
    if there is not None and there.get("revision", 0) > entry.get("revision", 0):
        return there
    return _upsert(document, entry)


def _apply(document: dict, digest: str, edit: Callable[[dict], None]) -> dict | None:
    for entry in document["keys"]:
        if entry.get("hash") == digest:
            edit(entry)
            entry["revision"] = entry.get("revision", 0) + 1  # a reshard's copy of an earlier one yields to it
            return entry
    return None  # not where its digest leads: the command says so


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


def _reopen(from_layouts: list[int]) -> Callable[[dict], None]:
    """A shard takes entries from these layouts (a mark left by an earlier reshard away from it goes)."""
    def reopen(document: dict) -> None:
        document.pop("moved_to", None)
        document["moving_from"] = sorted({*key_shards.moving_from(document), *from_layouts})
        document.setdefault("keys", [])
    return reopen


def _closed(document: dict) -> None:
    document.pop("moving_from", None)
    document.setdefault("keys", [])


def _mark_moved(entries: list[dict], count: int) -> Callable[[dict], None]:
    def mark(document: dict) -> None:
        if key_shards.moved_to(document) is not None or document.get("keys", []) != entries:
            raise _Stale()
        document["keys"] = []
        document["moved_to"] = count
    return mark
