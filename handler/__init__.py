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
