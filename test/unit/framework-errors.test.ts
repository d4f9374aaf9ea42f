// Unit tests of src/api/framework-errors.ts: answers to requests the HTTP parser refuses are
// in the API's documented error shape (fuzzer finding "error-shape").

import assert from "node:assert/strict";
import { test } from "node:test";
import { clientErrorAnswer, clientErrorResponse } from "../../src/api/framework-errors.js";

function parse(raw: string): { status: number; headers: Record<string, string>; body: unknown } {
  const [head = "", body = ""] = raw.split("\r\n\r\n");
  const [status = "", ...lines] = head.split("\r\n");
  const headers = Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
  );
  assert.equal(Buffer.byteLength(body), Number(headers["content-length"]), "Content-Length is the body's");
  return { status: Number(status.split(" ")[1]), headers, body: JSON.parse(body) };
}

test("parser errors: 400, 431 for headers too large, 408 for a timeout", () => {
  assert.equal(clientErrorAnswer("HPE_INVALID_METHOD").status, 400);
  assert.equal(clientErrorAnswer(undefined).status, 400);
  assert.equal(clientErrorAnswer("HPE_HEADER_OVERFLOW").status, 431);
  assert.equal(clientErrorAnswer("ERR_HTTP_REQUEST_TIMEOUT").status, 408);
});

test("the answer is a complete HTTP/1.1 response with a documented JSON error", () => {
  for (const code of ["HPE_INVALID_HEADER_TOKEN", "HPE_HEADER_OVERFLOW", undefined]) {
    const r = parse(clientErrorResponse(code));
    assert.match(r.headers["content-type"] ?? "", /^application\/json/);
    assert.equal(r.headers.connection, "close");
    const e = (r.body as { error: { code: string; message: string } }).error;
    assert.equal(e.code, "SOCKSWITCH_ERR_BAD_REQUEST");
    assert.ok(e.message.length > 10, e.message);
  }
  assert.equal(parse(clientErrorResponse("HPE_HEADER_OVERFLOW")).status, 431);
});
