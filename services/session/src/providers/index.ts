import type { ProviderSettings } from "../config.js";
import { AnthropicProvider } from "./anthropic.js";
import { OpenAIProvider } from "./openai.js";
import type { Provider } from "./provider.js";

export function createProvider(s: ProviderSettings, opts: { idleTimeoutMs: number; maxRetries: number; maxTokens: number }): Provider {
  const o = { model: s.model, baseURL: s.baseURL, apiKey: s.apiKey, ...opts };
  return s.kind === "anthropic" ? new AnthropicProvider(o) : new OpenAIProvider(o);
}
