"""The API's wire format: what a caller sends and what it gets back.

Request schemas, strict body reading, checks on content beyond the schema,
Anthropic's error envelope and statuses, SSE framing, the OpenAPI document and
Anthropic's usage object. Pure, and the bottom of the house: it imports
nothing of the gateway, and every other wing may import it.
"""
