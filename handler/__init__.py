"""Eden AI Anthropic Messages gateway.

litellm fetches its price map and Anthropic beta-header config from the
internet at import and on the first call unless told otherwise. A Lambda without
a route out would hang up to 5 s per cold start, so the package forces offline
mode before anything imports litellm; it is not left to the operator.
"""

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"
os.environ.setdefault("LITELLM_LOG", "ERROR")

import logging as _logging

# botocore logs request and response bodies at DEBUG (Secrets Manager values
# included) and litellm logs every prompt: a root logger at DEBUG must not turn
# either on. GATEWAY_LOG_PROMPTS is the switch for prompts.
_QUIET = {"botocore": _logging.INFO, "boto3": _logging.INFO, "urllib3": _logging.INFO,
          "LiteLLM": _logging.WARNING, "LiteLLM Router": _logging.WARNING, "LiteLLM Proxy": _logging.WARNING}
for _name, _level in _QUIET.items():
    if _logging.getLogger(_name).level == _logging.NOTSET:
        _logging.getLogger(_name).setLevel(_level)
