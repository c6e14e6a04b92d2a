// Client CPU per network read: fetch body reader vs node:http IncomingMessage, provider paced 1 ms/event.
import { createServer, request } from "node:http";
import { fork } from "node:child_process";
const N = 2000;
if (process.argv[2] === "server") {
  const line = `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n`;
  createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    let i = 0;
    const t = setInterval(() => { if (i++ < N) res.write(line); else { clearInterval(t); res.end(); } }, 1);
  }).listen(0, "127.0.0.1", function () { process.send(this.address().port); });
} else {
  const child = fork(new URL(import.meta.url).pathname, ["server"]);
  const port = await new Promise((r) => child.once("message", r));
  const url = `http://127.0.0.1:${port}/`;
  const viaFetch = async () => { const res = await fetch(url); const r = res.body.getReader(); let n = 0; for (;;) { const { done, value } = await r.read(); if (done) break; n++; } return n; };
  const viaHttp = () => new Promise((resolve, reject) => { const req = request(url, (res) => { let n = 0; res.on("data", () => n++); res.on("end", () => resolve(n)); res.on("error", reject); }); req.on("error", reject); req.end(); });
  const viaHttpIter = () => new Promise((resolve, reject) => { const req = request(url, async (res) => { let n = 0; for await (const _ of res) n++; resolve(n); }); req.on("error", reject); req.end(); });
  for (const [name, f] of [["fetch reader", viaFetch], ["http data events", viaHttp], ["http for-await", viaHttpIter], ["fetch reader", viaFetch], ["http data events", viaHttp], ["http for-await", viaHttpIter]]) {
    await f();
    const t0 = process.cpuUsage(); let reads = 0;
    for (let k = 0; k < 3; k++) reads += await f();
    const u = process.cpuUsage(t0); console.log(name.padEnd(20), ((u.user + u.system) / reads).toFixed(1), "µs/read", reads, "reads");
  }
  child.kill();
}
