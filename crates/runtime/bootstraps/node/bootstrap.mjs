// Stratus's Node.js runtime: the Lambda Runtime API loop, Node built-ins only.
//
// Loads _HANDLER ("module.function") from LAMBDA_TASK_ROOT (.js, .mjs or
// .cjs), then for each event calls handler(event, context[, callback]) and
// posts the result or the error. Async handlers and callbacks both work.
// Handlers wrapped in awslambda.streamifyResponse stream their answer
// (Lambda's response streaming), as on AWS's Node runtime.

import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { pathToFileURL } from 'node:url';

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const [HOST, PORT] = [API.slice(0, API.lastIndexOf(':')), Number(API.slice(API.lastIndexOf(':') + 1))];
const PREFIX = '/2018-06-01/runtime';

// The Runtime API client: one keep-alive socket, requests written in one
// piece, and a call's answer sent together with the next `next` (HTTP/1.1
// pipelining: a round trip saved per call). Written here rather than with
// node:http, whose per-request objects (agent, ClientRequest,
// IncomingMessage, header parsing into objects) cost more than the rest of
// a warm call; AWS's own Node runtime client uses a native HTTP client for
// the same reason. The server is Stratus: answers carry Content-Length.
// While no request is pending the socket is unref'd, so it never keeps
// the event loop alive (callbackWaitsForEmptyEventLoop relies on that).
class RuntimeApi {
  constructor() {
    this.socket = null;
    this.buf = Buffer.alloc(0);
    this.waiting = []; // { resolve, reject }, in the order requests were sent
  }

  connect() {
    const s = net.connect({ host: HOST, port: PORT, noDelay: true });
    s.on('data', (chunk) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.parse();
    });
    const fail = (err) => {
      if (this.socket !== s) return;
      this.socket = null;
      this.buf = Buffer.alloc(0);
      const waiting = this.waiting;
      this.waiting = [];
      for (const w of waiting) w.reject(err || new Error('Runtime API connection closed'));
    };
    s.on('error', fail);
    s.on('close', () => fail());
    this.socket = s;
    return s;
  }

  parse() {
    while (this.waiting.length) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.toString('latin1', 0, end).split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const headers = {};
      for (let i = 1; i < head.length; i++) {
        const c = head[i].indexOf(':');
        if (c > 0) headers[head[i].slice(0, c).trim().toLowerCase()] = head[i].slice(c + 1).trim();
      }
      const length = Number(headers['content-length'] || 0);
      if (this.buf.length < end + 4 + length) return;
      const body = this.buf.subarray(end + 4, end + 4 + length);
      this.buf = this.buf.subarray(end + 4 + length);
      const w = this.waiting.shift();
      if (!this.waiting.length) this.socket.unref();
      w.resolve({ status, headers, body });
    }
  }

  // Sends every [method, path, body, headers] in one write; one promise each.
  send(requests) {
    const s = this.socket || this.connect();
    s.ref();
    const parts = [];
    const answers = requests.map(([method, p, body, headers = {}]) => {
      const payload = body === undefined ? null : Buffer.from(body);
      let head = `${method} ${PREFIX}${p} HTTP/1.1\r\nHost: ${API}\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      head += `Content-Length: ${payload ? payload.length : 0}\r\n\r\n`;
      parts.push(Buffer.from(head, 'latin1'));
      if (payload) parts.push(payload);
      return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    });
    s.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    return answers;
  }
}

const api = new RuntimeApi();

// Requests on the kept-alive connection. When it breaks (the server closes
// it after refusing an oversized answer, say), the requests not answered
// yet are sent again one by one on a new connection; an answer the server
// will not take is given up, a failing `next` is not.
async function exchange(requests) {
  const pending = api.send(requests);
  const answers = [];
  try {
    for (const p of pending) answers.push(await p);
    return answers;
  } catch {
    for (const p of pending) p.catch(() => {});
  }
  for (const r of requests.slice(answers.length)) {
    try {
      answers.push(await api.send([r])[0]);
    } catch (e) {
      if (r[0] === 'GET') throw e;
      answers.push({ status: 0, headers: {}, body: Buffer.alloc(0) });
    }
  }
  return answers;
}

async function request(method, p, body, headers) {
  return (await exchange([[method, p, body, headers]]))[0];
}

// Posts a call's answer and asks for the next call, in one write.
async function answerThenNext(p, body, headers) {
  return (await exchange([['POST', p, body, headers], ['GET', '/invocation/next']]))[1];
}

function jsonHeaders(errorType) {
  const headers = { 'content-type': 'application/json' };
  if (errorType) headers['lambda-runtime-function-error-type'] = errorType;
  return headers;
}

function postJson(p, value, errorType) {
  return request('POST', p, JSON.stringify(value), jsonHeaders(errorType));
}

function errorBody(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: e.name || 'Error',
    errorMessage: e.message,
    stackTrace: (e.stack || '').split('\n').slice(1).map((l) => l.trim()),
  };
}

// console.* as Lambda's Node runtime writes it: time, request id, level, message.
let currentRequestId = undefined;
for (const [method, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']]) {
  const stream = level === 'ERROR' || level === 'WARN' ? process.stderr : process.stdout;
  console[method] = (...args) => {
    const msg = util.format(...args).replace(/\n/g, '\r');
    stream.write(`${new Date().toISOString()}\t${currentRequestId ?? 'undefined'}\t${level}\t${msg}\n`);
  };
}

// Response streaming, as the Node runtime provides it: a global `awslambda`
// with streamifyResponse (which marks a handler as streaming; it is then
// called as handler(event, responseStream, context)) and
// HttpResponseStream.from (the JSON prelude and 8 NUL bytes an HTTP
// integration reads before the body).
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

globalThis.awslambda = {
  streamifyResponse(handler, options) {
    handler[STREAMING] = 'response';
    if (options && Number.isInteger(options.highWaterMark)) handler[HIGH_WATER_MARK] = options.highWaterMark;
    return handler;
  },
  HttpResponseStream: class HttpResponseStream {
    static from(stream, prelude) {
      stream.setContentType(HTTP_INTEGRATION);
      const metadata = JSON.stringify(prelude ?? {});
      stream._onBeforeFirstWrite = (write) => {
        write(metadata);
        write(new Uint8Array(8));
      };
      return stream;
    }
  },
};

// Streamed answers go on a request of their own (chunked, with the error
// trailers declared), through node:http: one per streamed call, where its
// cost does not matter next to the stream's.
const streamAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function responseStream(requestId, highWaterMark) {
  const req = http.request({
    host: HOST,
    port: PORT,
    method: 'POST',
    path: `${PREFIX}/invocation/${requestId}/response`,
    agent: streamAgent,
    highWaterMark,
    headers: {
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      'Transfer-Encoding': 'chunked',
      Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
      'Content-Type': 'application/octet-stream',
    },
  });
  req.on('socket', (s) => s.setNoDelay(true));
  req.done = new Promise((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('error', resolve);
  });
  req.setContentType = (type) => {
    if (req.headersSent) throw new Error('Tried to set content type after the response stream started');
    req.setHeader('Content-Type', type);
  };
  const write = req.write.bind(req);
  const end = req.end.bind(req);
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    if (req._onBeforeFirstWrite) req._onBeforeFirstWrite((chunk) => write(chunk));
  };
  req.write = (...args) => {
    start();
    return write(...args);
  };
  req.end = (...args) => {
    start();
    return end(...args);
  };
  req.fail = (body) => {
    if (req.writableEnded) return;
    start();
    req.addTrailers({
      'Lambda-Runtime-Function-Error-Type': body.errorType,
      'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(body)).toString('base64'),
    });
    end();
  };
  return req;
}

// Runs a streaming handler: its stream ends when the handler is done (or
// with the error trailers when it fails).
async function streamHandler(fn, event, context, requestId) {
  const stream = responseStream(requestId, fn[HIGH_WATER_MARK]);
  try {
    await fn(event, stream, context);
    if (!stream.writableEnded) stream.end();
  } catch (e) {
    const body = errorBody(e);
    console.error(`Invoke Error \t${JSON.stringify(body)}`);
    stream.fail(body);
  }
  await stream.done;
}

class InitError extends Error {
  constructor(type, message) { super(message); this.name = type; }
}

async function loadHandler() {
  const handler = process.env._HANDLER || '';
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new InitError('Runtime.MalformedHandlerName', `Bad handler ${handler}`);
  const moduleName = handler.slice(0, dot);
  const fnName = handler.slice(dot + 1);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => path.join(root, moduleName + ext)).find((f) => fs.existsSync(f));
  if (!file) throw new InitError('Runtime.ImportModuleError', `Error: Cannot find module '${moduleName}'`);
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (e) {
    throw new InitError(e instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError', String(e));
  }
  const fn = mod[fnName] ?? mod.default?.[fnName];
  if (typeof fn !== 'function') throw new InitError('Runtime.HandlerNotFound', `${moduleName}.${fnName} is undefined or not exported`);
  return fn;
}

// Resolves to { result, viaCallback }: whether the handler answered through
// its callback (context.done/succeed/fail included) or by returning.
function callHandler(fn, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (viaCallback) => (err, result) => {
      if (settled) return;
      settled = true;
      err ? reject(Object.assign(wrapError(err), { viaCallback })) : resolve({ result, viaCallback });
    };
    const callback = settle(true);
    context.done = callback;
    context.succeed = (r) => callback(null, r);
    context.fail = (e) => callback(e);
    try {
      const out = fn(event, context, callback);
      if (out && typeof out.then === 'function') {
        const returned = settle(false);
        out.then((r) => returned(null, r), (e) => returned(e));
      } else if (fn.length < 3) {
        settle(false)(null, out);
      }
    } catch (e) {
      settle(false)(e);
    }
  });
}

function wrapError(err) {
  return err instanceof Error ? err : Object.assign(new Error(String(err)), { original: err });
}

// As on AWS: a callback-style answer is sent once the event loop is empty
// (pending timers, sockets and the like have run), unless the handler set
// context.callbackWaitsForEmptyEventLoop = false. The Runtime API's own
// keep-alive socket is unref'd while idle, so it never holds the loop.
function eventLoopEmpty() {
  return new Promise((resolve) => process.once('beforeExit', resolve));
}

async function main() {
  let fn;
  try {
    fn = await loadHandler();
  } catch (e) {
    const body = errorBody(e);
    process.stderr.write(`${new Date().toISOString()}\tundefined\tERROR\t${body.errorType}: ${body.errorMessage}\n`);
    await postJson('/init/error', body, body.errorType);
    process.exit(1);
  }
  let next = await request('GET', '/invocation/next');
  for (;;) {
    const h = next.headers;
    const requestId = h['lambda-runtime-aws-request-id'];
    const deadline = Number(h['lambda-runtime-deadline-ms'] || 0);
    currentRequestId = requestId;
    process.env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'] || '';
    const context = {
      awsRequestId: requestId,
      invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: h['lambda-runtime-client-context'] ? JSON.parse(h['lambda-runtime-client-context']) : undefined,
      identity: h['lambda-runtime-cognito-identity'] ? JSON.parse(h['lambda-runtime-cognito-identity']) : undefined,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    if (fn[STREAMING] === 'response') {
      let event = null;
      try {
        event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
      } catch (e) {
        const body = errorBody(e);
        next = await answerThenNext(`/invocation/${requestId}/error`, JSON.stringify(body), jsonHeaders(body.errorType));
        continue;
      }
      await streamHandler(fn, event, context, requestId);
      next = await request('GET', '/invocation/next');
      continue;
    }
    let answer;
    try {
      const event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
      const { result, viaCallback } = await callHandler(fn, event, context);
      if (viaCallback && context.callbackWaitsForEmptyEventLoop) await eventLoopEmpty();
      answer = [`/invocation/${requestId}/response`, JSON.stringify(result === undefined ? null : result), jsonHeaders()];
    } catch (e) {
      if (e && e.viaCallback && context.callbackWaitsForEmptyEventLoop) await eventLoopEmpty();
      const body = errorBody(e && e.original !== undefined ? e.original : e);
      console.error(`Invoke Error \t${JSON.stringify(body)}`);
      answer = [`/invocation/${requestId}/error`, JSON.stringify(body), jsonHeaders(body.errorType)];
    }
    next = await answerThenNext(...answer);
  }
}

process.on('unhandledRejection', (reason) => {
  const body = errorBody(reason);
  process.stderr.write(`${new Date().toISOString()}\t${currentRequestId}\tERROR\tUnhandled Promise Rejection\t${JSON.stringify(body)}\n`);
  process.exit(128);
});

main();
