// workerd peer: a module worker answering "Hello, World!" to every request.
export default {
  async fetch() {
    return new Response("Hello, World!", { headers: { "Content-Type": "text/plain" } });
  },
};
