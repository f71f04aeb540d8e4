"""The request's path: plan, build the calls, run them, meter the outcome.

`planning` resolves names and returns the attempts (explicit chain or
`@edenai`'s ranking by `routing`, with each model's `adaptation`); `calls`
builds each attempt's upstream call (`history` adapts the conversation);
`gateway` reserves against the key's limits, runs the attempts and meters
them; `breaker` keeps a failing model out of routing; `model_list` answers
/v1/models. Imports every wing below the app: protocol, cache, keys,
metering, translation, providers.
"""
