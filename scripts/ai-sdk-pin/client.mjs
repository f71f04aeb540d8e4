// One call of the Vercel AI SDK (ai + @ai-sdk/anthropic) against the gateway, for scripts/ai-sdk.
//
// Reads the call as JSON on stdin: {"call": "generateText" | "streamText", "model", "prompt",
// "maxOutputTokens", "providerOptions"}, or "turns" (a list of prompts) in place of "prompt": a
// conversation, each turn sent with the earlier turns and their answers as the SDK returned
// them (`response.messages`, `fallback` blocks included). Talks to $ANTHROPIC_BASE_URL (the
// gateway's .../v3) with $ANTHROPIC_API_KEY, no retries of the SDK's own; prints what the
// application sees as JSON: the text, the content parts (the `fallback` blocks arrive as
// `custom` parts of kind `anthropic.fallback`), the finish reason, the response's model id and
// headers, the usage, and for a stream the order of its parts; for turns, {"turns": [...]}.
// A call that throws prints {"error": ...} and exits 1.
import { createAnthropic } from "@ai-sdk/anthropic";
import { generateText, streamText } from "ai";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const base = (process.env.ANTHROPIC_BASE_URL || "http://127.0.0.1:8000/v3").replace(/\/$/, "");
const anthropic = createAnthropic({ baseURL: `${base}/v1`, apiKey: process.env.ANTHROPIC_API_KEY });
const options = {
  model: anthropic(request.model),
  maxOutputTokens: request.maxOutputTokens ?? 64,
  providerOptions: request.providerOptions ?? {},
  maxRetries: 0,
};

function seen(result, content, extra) {
  return {
    text: result.text,
    content: content.map((part) => ({ type: part.type, kind: part.kind, text: part.text,
                                      providerMetadata: part.providerMetadata })),
    finishReason: result.finishReason,
    rawFinishReason: result.rawFinishReason,
    modelId: result.response.modelId,
    headers: result.response.headers,
    usage: result.usage,
    ...extra,
  };
}

async function call(messages) {
  if (request.call === "streamText") {
    const parts = [];
    let failure = null;
    const stream = streamText({ ...options, messages, onError: ({ error }) => { failure = error; } });
    for await (const part of stream.fullStream) parts.push({ type: part.type, kind: part.kind });
    if (failure) throw failure;
    const [text, content, finishReason, rawFinishReason, response, usage] = await Promise.all([
      stream.text, stream.content, stream.finishReason, stream.rawFinishReason, stream.response, stream.usage]);
    return [seen({ text, finishReason, rawFinishReason, response, usage }, content, { parts }), response.messages];
  }
  const result = await generateText({ ...options, messages });
  return [seen(result, result.content, {}), result.response.messages];
}

try {
  const messages = [];
  const turns = [];
  for (const prompt of request.turns ?? [request.prompt]) {
    messages.push({ role: "user", content: prompt });
    const [output, answer] = await call([...messages]);
    messages.push(...answer);
    turns.push(output);
  }
  process.stdout.write(JSON.stringify(request.turns ? { turns } : turns[0]) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ error: { name: error?.name, message: String(error?.message ?? error),
                                                 statusCode: error?.statusCode ?? null } }) + "\n");
  process.exit(1);
}
