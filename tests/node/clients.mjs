// Real JavaScript clients, as coding tools use them, against the daemon. One JSON line out.
// usage: node clients.mjs <case> <baseURL> <apiKey> <model>
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { createOpenAI } from "@ai-sdk/openai";
import { streamText, generateText, tool, jsonSchema } from "ai";
import OpenAI from "openai";

const [which, baseURL, apiKey, model] = process.argv.slice(2);

const cases = {
  // The Kilo CLI: the OpenRouter AI-SDK provider, default compatibility, streaming.
  async "kilo-cli-stream"() {
    const openrouter = createOpenRouter({ baseURL, apiKey });
    const result = streamText({ model: openrouter.languageModel(model), prompt: "hi" });
    let text = "";
    for await (const t of result.textStream) text += t;
    return { text, usage: await result.totalUsage, meta: await result.providerMetadata };
  },
  async "kilo-cli-generate"() {
    const openrouter = createOpenRouter({ baseURL, apiKey });
    const r = await generateText({ model: openrouter.languageModel(model), prompt: "hi" });
    return { text: r.text, usage: r.totalUsage, meta: r.providerMetadata };
  },
  // The Vercel AI SDK's default OpenAI provider: createOpenAI(...)(id) speaks the Responses API.
  async "ai-sdk-openai-stream"() {
    const openai = createOpenAI({ baseURL, apiKey });
    const result = streamText({ model: openai(model), prompt: "hi" });
    let text = "";
    for await (const t of result.textStream) text += t;
    return { text, usage: await result.totalUsage };
  },
  async "ai-sdk-openai-tools"() {
    const openai = createOpenAI({ baseURL, apiKey });
    const r = await generateText({
      model: openai(model), prompt: "weather in Paris?",
      tools: { get_weather: tool({ description: "weather for a city",
        inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } },
                                  required: ["city"] }) }) },
    });
    return { text: r.text, toolCalls: r.toolCalls, usage: r.totalUsage };
  },
  // The official openai Node SDK: chat (stream) and Responses.
  async "openai-node-chat-stream"() {
    const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model, stream: true, messages: [{ role: "user", content: "hi" }],
      stream_options: { include_usage: true } });
    let text = "", usage = null;
    for await (const c of stream) {
      text += c.choices?.[0]?.delta?.content ?? "";
      if (c.usage) usage = c.usage;
    }
    return { text, usage };
  },
  async "openai-node-responses"() {
    const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
    const r = await client.responses.create({ model, input: "hi" });
    return { text: r.output_text, usage: r.usage, status: r.status };
  },
};

try {
  const out = await cases[which]();
  process.stdout.write(JSON.stringify({ ok: true, ...out }) + "\n");
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e?.message ?? e),
    status: e?.status ?? e?.statusCode ?? null }) + "\n");
}
