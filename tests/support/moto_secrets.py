"""moto's Secrets Manager, made to behave like Secrets Manager where key writes depend on it.

gateway-admin writes a keys secret by compare-and-swap: it puts a new version
under a private staging label, then moves `AWSCURRENT` onto it with
`UpdateSecretVersionStage(RemoveFromVersionId=<the version it read>)`, which
Secrets Manager refuses when `AWSCURRENT` has moved on meanwhile. moto 5.2.5
gets two things wrong here (FIELD-NOTES.md): moving `AWSCURRENT` leaves
`GetSecretValue` returning the old version (moto reads `default_version_id`,
which only PutSecretValue updates), and its check-then-move runs unlocked, so
two writers can both pass the check. `install()` fixes both, once.
"""

from __future__ import annotations

from moto.secretsmanager.models import SecretsManagerBackend

from tests.support.moto_dynamodb import _serialised  # one lock for both services' fixed calls

_stock_update_stage = SecretsManagerBackend.update_secret_version_stage


def update_secret_version_stage(self: SecretsManagerBackend, secret_id: str, version_stage: str,
                                remove_from_version_id: str, move_to_version_id: str) -> tuple[str, str]:
    answer = _stock_update_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].default_version_id = move_to_version_id  # what GetSecretValue returns
    return answer


def install() -> None:
    if getattr(SecretsManagerBackend.update_secret_version_stage, "serialised", False):
        return
    SecretsManagerBackend.update_secret_version_stage = _serialised(update_secret_version_stage)
    for name in ("get_secret_value", "put_secret_value", "create_secret", "delete_secret"):
        setattr(SecretsManagerBackend, name, _serialised(getattr(SecretsManagerBackend, name)))
