// Node.js peer: http.createServer answering "Hello, World!" to every request.
// One process, one event loop: Node's default. Port from PORT.
"use strict";
const http = require("http");

const port = Number(process.env.PORT || 8080);
const body = "Hello, World!";

http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length });
    res.end(body);
  })
  .listen(port, "127.0.0.1", () => {
    console.log(`listening on http://127.0.0.1:${port}`);
  });
