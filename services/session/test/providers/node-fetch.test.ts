import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { getEventListeners } from "node:events";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headerList, nodeBodyOf, nodeFetch, sendNode } from "../../src/providers/node-fetch.js";

let server: Server;
let base: string;
const seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[] = [];
/** Responses still open, ended by the test that opened them or at teardown. */
const open = new Set<ServerResponse>();

async function text(stream: AsyncIterable<unknown>): Promise<string> {
  let out = "";
  for await (const chunk of stream) out += String(chunk);
  return out;
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await text(req);
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    switch (req.url) {
      case "/echo":
        res.writeHead(200, { "content-type": "text/event-stream", "x-multi": ["a", "b"] }).end(`data: ${body}\n\n`);
        return;
      case "/gzip":
        res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync("data: zipped\n\n"));
        return;
      case "/moved":
        res.writeHead(307, { location: "/echo" }).end();
        return;
      case "/empty":
        res.writeHead(204).end();
        return;
      case "/error":
        res.writeHead(429, { "content-type": "application/json" }).end('{"error":{"message":"slow down"}}');
        return;
      case "/hang":
        open.add(res);
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: first\n\n");
        res.on("close", () => open.delete(res));
        return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of open) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("nodeFetch", () => {
  it("sends the method, headers and body, and gives the streamed body as a Node stream", async () => {
    const res = await nodeFetch(`${base}/echo`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer k" }, body: '{"a":1}' });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("x-multi")).toBe("a, b");
    expect(seen.at(-1)).toMatchObject({ method: "POST", body: '{"a":1}', headers: { authorization: "Bearer k", "content-type": "application/json" } });
    expect(await text(nodeBodyOf(res)!)).toBe('data: {"a":1}\n\n');
  });

  it("serves the same body through response.body for readers that use it (the SDKs read error bodies so)", async () => {
    const ok = await nodeFetch(`${base}/echo`, { method: "POST", body: "x" });
    expect(await ok.text()).toBe("data: x\n\n");
    const err = await nodeFetch(`${base}/error`);
    expect(err.status).toBe(429);
    expect(await err.json()).toEqual({ error: { message: "slow down" } });
  });

  it("undoes a gzip content-encoding, as fetch does", async () => {
    expect(await text(nodeBodyOf(await nodeFetch(`${base}/gzip`))!)).toBe("data: zipped\n\n");
    expect(await (await nodeFetch(`${base}/gzip`)).text()).toBe("data: zipped\n\n");
  });

  it("follows a redirect by sending the request again through fetch", async () => {
    const before = seen.length;
    const res = await nodeFetch(`${base}/moved`, { method: "POST", body: "again" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("data: again\n\n");
    expect(seen.slice(before).map((s) => s.url)).toEqual(["/moved", "/moved", "/echo"]);
  });

  it("gives a null body for a 204", async () => {
    const res = await nodeFetch(`${base}/empty`);
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
  });

  it("ends a body being read with an error when the signal aborts", async () => {
    const ac = new AbortController();
    const res = await nodeFetch(`${base}/hang`, { signal: ac.signal });
    const it = nodeBodyOf(res)![Symbol.asyncIterator]();
    expect(String((await it.next()).value)).toBe("data: first\n\n");
    const pending = it.next();
    ac.abort();
    await expect(pending).rejects.toThrow();
  });

  it("leaves no abort listener on the signal once the exchange is over", async () => {
    const ac = new AbortController();
    const res = await nodeFetch(`${base}/echo`, { method: "POST", body: "x", signal: ac.signal });
    for await (const _ of nodeBodyOf(res)!) void _;
    await new Promise((r) => setImmediate(r));
    expect(getEventListeners(ac.signal, "abort")).toEqual([]);
  });

  it("rejects when the server cannot be reached, and with an abort before the answer", async () => {
    await expect(nodeFetch("http://127.0.0.1:1/")).rejects.toThrow(/ECONNREFUSED/);
    await expect(nodeFetch(`${base}/echo`, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
  });
});

describe("sendNode with a header list", () => {
  it("sends the list as the request head: Host added unless given, the body's length set per request", async () => {
    const url = new URL(`${base}/echo`);
    const list = headerList(url, { "content-type": "application/json", "Content-Length": "999", "x-custom": "1" });
    expect([...list]).toEqual(["content-type", "application/json", "x-custom", "1", "host", url.host]);
    for (const body of ["{}", "{\"é\":1}"]) {
      const res = await sendNode(url, "POST", list, body, undefined);
      res.resume();
      const got = seen.at(-1)!;
      expect(got.body).toBe(body);
      expect(got.headers).toMatchObject({ host: url.host, "content-length": String(Buffer.byteLength(body)), "x-custom": "1" });
      expect(got.headers["transfer-encoding"]).toBeUndefined();
    }
    expect([...list]).toHaveLength(6);
    expect([...headerList(url, { Host: "proxy.example:8080" })]).toEqual(["Host", "proxy.example:8080"]);
  });

  it("refuses a header value node:http refuses, as with a record", async () => {
    const url = new URL(`${base}/echo`);
    await expect(sendNode(url, "POST", headerList(url, { "x-bad": "a\nb" }), "x", undefined)).rejects.toThrow(/Invalid character in header content/);
  });
});
