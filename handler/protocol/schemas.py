"""The seed specification's schemas as pydantic models.

Field names, types, bounds and `additionalProperties: true` follow
seed-openapi-create-anthropic-message.md exactly, so FastAPI's OpenAPI
document and its 422 answers are the spec's own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """additionalProperties: true, as every object in the spec.

    Strict: "5" is not an integer and "yes" is not a boolean, as in
    Anthropic's own API; a lax coercion would hide a caller's bug.
    """

    model_config = ConfigDict(extra="allow", strict=True)


class AnthropicContentBlock(_Open):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    # The seed's string or list, and an object: Anthropic's server-tool result blocks
    # (`tool_search_tool_result`, `web_fetch_tool_result`, ...) carry one there.
    content: str | list[Any] | dict[str, Any] | None = None
    is_error: bool | None = None
    source: dict[str, Any] | str | None = None  # a search_result names its source with a string
    thinking: str | None = None
    signature: str | None = None


class AnthropicMessage(_Open):
    role: Literal["user", "assistant", "system"]
    content: str | list[AnthropicContentBlock]


class FallbackModel(BaseModel):
    """A fallback in Anthropic's own shape (anthropic SDK `BetaFallbackParam`): the model and
    overrides for that attempt only. Any other key is refused, as Anthropic refuses it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: str
    max_tokens: int | None = Field(None, ge=1)
    thinking: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    speed: Literal["standard", "fast"] | None = None


class AnthropicMessagesBody(_Open):
    fallbacks: Annotated[list[str | FallbackModel], Field(max_length=3)] | Literal["default"] | None = Field(
        None,
        description=(
            "List of fallback model IDs to try if the primary model fails. Models are tried "
            "in order. Example: ['anthropic/claude-3-opus', 'openai/gpt-4o']. An entry may "
            "also be Anthropic's object {'model': ..., 'max_tokens'?, 'thinking'?, "
            "'output_config'?, 'speed'?}, whose overrides apply to that attempt only; "
            "'default' names the operator's chain for the model. With the "
            "server-side-fallback beta, a refusal moves to the next entry too."
        ),
    )
    router_candidates: list[str] | None = Field(
        None,
        description=(
            "List of model candidates for dynamic routing when using model='@edenai'. Each "
            "entry should be 'provider/model'. If not provided, defaults to all available models."
        ),
    )
    model: str
    messages: list[AnthropicMessage]
    max_tokens: int | None = Field(1024, ge=1)
    system: str | list[dict[str, Any]] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = None
    stream: bool | None = False
    stop_sequences: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    extra_headers: dict[str, str] | None = None


class AnthropicUsage(_Open):
    input_tokens: int = Field(description="Number of input tokens consumed.")
    output_tokens: int = Field(description="Number of output tokens generated.")
    cache_creation_input_tokens: int | None = Field(
        None, description="Tokens written to the prompt cache (when prompt caching is used)."
    )
    cache_read_input_tokens: int | None = Field(
        None, description="Tokens read from the prompt cache (when prompt caching is used)."
    )


class AnthropicMessagesResponse(_Open):
    """Response body for POST /v1/messages (non-streaming)."""

    id: str = Field(description="Unique identifier for the message.")
    type: Literal["message"] = Field("message", description="Object type. Always 'message'.")
    role: Literal["assistant"] = Field("assistant", description="Conversational role.")
    model: str = Field(description="Model that generated the message.")
    content: list[AnthropicContentBlock] = Field(
        description="Ordered list of content blocks produced by the model."
    )
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"] | None = Field(
        None, description="Reason generation stopped, if known."
    )
    stop_sequence: str | None = Field(
        None, description="Custom stop sequence that triggered the stop, if any."
    )
    usage: AnthropicUsage = Field(description="Token usage for the request.")


class CountTokensBody(_Open):
    """POST /v3/v1/messages/count_tokens: the parts of a message request that take input tokens."""

    model: str
    messages: list[AnthropicMessage]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


class CountTokensResponse(BaseModel):
    input_tokens: int


class ModelInfo(BaseModel):
    """Anthropic's model object (capabilities as Anthropic nests them)."""

    type: Literal["model"] = "model"
    id: str
    display_name: str
    created_at: str
    lifecycle: Literal["active", "deprecated", "retired"] = "active"
    max_input_tokens: int | None = None
    max_tokens: int | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)


class ModelList(BaseModel):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
