"""Providers: the catalogue, one module per provider family, and the calls to them.

`catalogue` and `price_map` say which models exist and what they cost;
`families/` holds one module per provider type, each answering the same
questions (base.py); the direct routes (`anthropic_api`, `bedrock_api`,
`vertex_api`, `openai_api`) and the litellm route send calls; `upstream` sends
an attempt through its family and relays a stream. Imports protocol and
translation; the transport depends on the families, never the reverse.
"""
