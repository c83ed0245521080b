// Bun peer: Bun.serve answering "Hello, World!" to every request. One
// process; Bun.serve runs its handler on the main JS thread. Port from PORT.
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT || 8080),
  fetch() {
    return new Response("Hello, World!", { headers: { "Content-Type": "text/plain" } });
  },
});
console.log(`listening on http://127.0.0.1:${server.port}`);
