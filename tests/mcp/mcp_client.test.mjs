// `cp-host mcp` driven by the official MCP TypeScript SDK client, as an agent's host drives it: a real
// project root, a real git repository and a real sealed run, then every read tool over stdio, hostile
// protocol input on a raw pipe, refused writes (and proof that nothing was written), and writes with an
// operator token, refused to a viewer's and from inside a run.
//
// Run by ctest (tests/CMakeLists.txt: CP_HOST_BIN is the built binary); by hand:
//   CP_HOST_BIN=build/bin/cp-host node --test tests/mcp/mcp_client.test.mjs
// The SDK comes from web/node_modules (web/package.json pins it; the build's `npm ci` installs it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const source = process.env.CP_SOURCE_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.CP_HOST_BIN ?? path.join(source, 'build/bin/cp-host');
const fromWeb = createRequire(path.join(source, 'web/package.json'));
let sdk;
try {
  sdk = {
    ...fromWeb('@modelcontextprotocol/sdk/client/index.js'),
    ...fromWeb('@modelcontextprotocol/sdk/client/stdio.js'),
    ...fromWeb('@modelcontextprotocol/sdk/types.js'),
  };
} catch (e) {
  throw new Error('@modelcontextprotocol/sdk is not installed in web/node_modules (run `npm ci` in web/): ' +
    e.message);
}
const { Client, StdioClientTransport, McpError } = sdk;

const READ_TOOLS = ['list_runs', 'show_run', 'run_events', 'run_diff', 'queue_list', 'approvals_list',
  'workflows_list', 'validate_contract'];
const WRITE_TOOLS = ['submit_contract', 'cancel_queue_item', 'approve_run', 'reject_run'];

let tmp, root, repo, keys, tokens, runId, operatorToken, viewerTokenFile;
const clients = [];

// The environment of every cp-host started here: the caller's, without anything that would point it at
// another server, token, root or run, and with a key folder and user config of this test's own.
function cpEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^CP_(HOST_(URL|TOKEN|ROOT|STORE)|RUN_ID)$/.test(k)) env[k] = v;
  return { ...env, CP_HOST_KEY_DIR: keys, XDG_CONFIG_HOME: path.join(tmp, 'config'), ...extra };
}

function cpHost(args, extra = {}) {
  return spawnSync(bin, ['--root', root, ...args], { env: cpEnv(extra), cwd: root, encoding: 'utf8' });
}

function git(...args) {
  execFileSync('git', ['-c', 'user.name=cp-host-test', '-c', 'user.email=test@localhost', ...args],
    { cwd: repo, stdio: 'ignore' });
}

async function connect(args = [], extra = {}) {
  const transport = new StdioClientTransport({
    command: bin, args: ['--root', root, 'mcp', ...args], env: cpEnv(extra), cwd: root, stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr.on('data', (d) => { stderr += d; });
  const client = new Client({ name: 'cp-host-mcp-test', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (e) {
    throw new Error(`cp-host mcp did not start: ${e.message}\n${stderr}`);
  }
  clients.push(client);
  return client;
}

// A tool's answer, checked to be well formed: its text is the JSON of its structured content.
async function call(client, name, args = {}) {
  const r = await client.callTool({ name, arguments: args });
  assert.equal(r.content.length, 1, `${name}: one text content`);
  assert.equal(r.content[0].type, 'text');
  if (!r.isError) assert.deepEqual(JSON.parse(r.content[0].text), r.structuredContent, `${name}: text is the JSON`);
  return r;
}

async function callOk(client, name, args = {}) {
  const r = await call(client, name, args);
  assert.ok(!r.isError, `${name} failed: ${r.content[0].text}`);
  return r.structuredContent;
}

async function callRefused(client, name, args, pattern) {
  const r = await call(client, name, args);
  assert.equal(r.isError, true, `${name} should fail: ${r.content[0].text}`);
  assert.match(r.content[0].text, pattern);
  return r;
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => e instanceof McpError && e.code === code);
}

const noop = () => JSON.parse(fs.readFileSync(path.join(source, 'contracts/examples/noop.json'), 'utf8'));

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cp-mcp-test-'));
  root = path.join(tmp, 'root');
  repo = path.join(tmp, 'repo');
  keys = path.join(tmp, 'keys');
  tokens = path.join(tmp, 'tokens.json');
  for (const d of ['packs', 'policies', 'contracts'])
    fs.cpSync(path.join(source, d), path.join(root, d), { recursive: true });
  fs.cpSync(path.join(source, 'examples/sample-repo'), repo, { recursive: true });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'sample project');
  // A contract that does not validate (no such pack), and one reached through a link out of the root.
  fs.writeFileSync(path.join(root, 'contracts/broken.json'),
    JSON.stringify({ ...noop(), runtime_options: { runner: 'tool', pack: 'no-such-pack', commands: ['true'] } }));
  fs.writeFileSync(path.join(tmp, 'outside.json'), JSON.stringify(noop()));
  fs.symlinkSync(path.join(tmp, 'outside.json'), path.join(root, 'contracts/escape.json'));

  const ran = cpHost(['run', 'contracts/examples/fix-greeting.json', '--repo', repo, '--quiet']);
  assert.equal(ran.status, 0, `the demo run failed: ${ran.stdout}${ran.stderr}`);
  const listed = JSON.parse(cpHost(['runs', 'list', '--json']).stdout);
  assert.equal(listed.count, 1);
  runId = listed.runs[0].run_id;

  const op = cpHost(['tokens', 'add', '--file', tokens, '--id', 'op', '--role', 'operator']);
  assert.equal(op.status, 0, op.stderr);
  operatorToken = op.stdout.trim();
  const viewer = cpHost(['tokens', 'add', '--file', tokens, '--id', 'watcher', '--role', 'viewer']);
  assert.equal(viewer.status, 0, viewer.stderr);
  viewerTokenFile = path.join(tmp, 'viewer.token');
  fs.writeFileSync(viewerTokenFile, viewer.stdout, { mode: 0o600 });
});

after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// A real run of the demo contract under the pack that requires approval: it waits for a decision.
function runAwaitingApproval(taskId) {
  const contract = JSON.parse(fs.readFileSync(path.join(source, 'contracts/examples/fix-greeting.json'), 'utf8'));
  contract.task_id = taskId;
  contract.runtime_options.pack = 'high';
  const file = path.join(root, 'contracts', `${taskId}.json`);
  fs.writeFileSync(file, JSON.stringify(contract));
  const ran = cpHost(['run', file, '--repo', repo, '--quiet', '--json']);
  assert.equal(ran.status, 9, `${taskId} should await approval: ${ran.stdout}${ran.stderr}`);
  const runs = JSON.parse(cpHost(['runs', 'list', '--json', '--search', taskId]).stdout).runs;
  assert.equal(runs.length, 1);
  return runs[0].run_id;
}

function queueItems() {
  const r = cpHost(['queue', 'list', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).items;
}

test('a read-only server lists the read tools and no write tool', async () => {
  const client = await connect();
  assert.equal(client.getServerVersion().name, 'cp-host');
  assert.ok(client.getServerCapabilities().tools, 'tools capability');
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const t of READ_TOOLS) assert.ok(names.includes(t), `${t} is listed`);
  for (const t of WRITE_TOOLS) assert.ok(!names.includes(t), `${t} is not listed`);
  for (const t of tools) {
    assert.ok(t.description.length > 20, `${t.name} has a description`);
    assert.equal(t.inputSchema.type, 'object');
    assert.equal(t.inputSchema.additionalProperties, false);
    assert.ok(Array.isArray(t.inputSchema.required));
    assert.equal(t.annotations.readOnlyHint, true);
  }
});

test('the read tools answer what the CLI prints with --json', async () => {
  const client = await connect();
  const runs = await callOk(client, 'list_runs');
  assert.equal(runs.count, 1);
  assert.equal(runs.runs[0].run_id, runId);
  assert.deepEqual(runs, JSON.parse(cpHost(['runs', 'list', '--json']).stdout));
  assert.equal((await callOk(client, 'list_runs', { verdict: 'failure' })).count, 0);
  await callRefused(client, 'list_runs', { since: 'yesterday' }, /since/);

  const manifest = await callOk(client, 'show_run', { run_id: runId });
  assert.equal(manifest.run_id, runId);
  assert.equal(manifest.status, 'sealed');
  assert.equal(manifest.verdict, 'success');
  assert.deepEqual(manifest, JSON.parse(cpHost(['runs', 'show', runId, '--json']).stdout));

  const first = await callOk(client, 'run_events', { run_id: runId, limit: 2 });
  assert.equal(first.events.length, 2);
  assert.equal(first.more, true);
  assert.equal(first.events[0].type, 'RUN_STARTED');
  assert.equal(first.run_status, 'sealed');
  const rest = await callOk(client, 'run_events', { run_id: runId, after_seq: first.next_after_seq });
  assert.equal(rest.more, false);
  assert.equal(rest.events[0].seq, first.events[1].seq + 1);
  assert.equal(rest.events.at(-1).type, 'RUN_SEALED');
  const sealed = await callOk(client, 'run_events', { run_id: runId, type: 'RUN_SEALED' });
  assert.deepEqual(sealed.events.map((e) => e.type), ['RUN_SEALED']);

  const diff = await callOk(client, 'run_diff', { run_id: runId });
  assert.deepEqual(diff, JSON.parse(cpHost(['runs', 'diff', runId, '--json']).stdout));
  assert.equal(diff.totals.files, 1);
  assert.equal(diff.files[0].path, 'src/greeting.sh');
  assert.equal(diff.files[0].status, 'modified');
  assert.ok(diff.files[0].hunks[0].lines.some((l) => l.startsWith('+') && l.includes('Hello')));

  assert.deepEqual((await callOk(client, 'queue_list')).items, []);
  assert.deepEqual(await callOk(client, 'approvals_list'), { approvals: [], count: 0 });
  const workflows = await callOk(client, 'workflows_list');
  assert.ok(Array.isArray(workflows.workflows));
  assert.equal(workflows.count, workflows.workflows.length);
});

test('run ids are checked before they name a folder', async () => {
  const client = await connect();
  for (const bad of ['../../../etc', '/etc/passwd', '.', 'a/b', runId + '/..'])
    for (const tool of ['show_run', 'run_events', 'run_diff'])
      await callRefused(client, tool, { run_id: bad }, /is not a run id/);
  await callRefused(client, 'show_run', { run_id: 'noop-20260101T000000Z-000000' }, /no run/);
  await callRefused(client, 'run_diff', { run_id: 'noop-20260101T000000Z-000000' }, /no run/);
});

test('validate_contract reports problems, inline or by path, and never leaves the root', async () => {
  const client = await connect();
  const good = await callOk(client, 'validate_contract', { path: 'contracts/examples/fix-greeting.json' });
  assert.equal(good.ok, true, JSON.stringify(good.diagnostics));
  assert.equal(good.files_checked, 1);

  const broken = await callOk(client, 'validate_contract', { path: 'contracts/broken.json' });
  assert.equal(broken.ok, false);
  assert.ok(broken.diagnostics.some((d) => d.pointer === '/runtime_options/pack' && d.rule.startsWith('xref')),
    JSON.stringify(broken.diagnostics));

  const { task_id: _dropped, ...untitled } = noop();
  const inline = await callOk(client, 'validate_contract', { contract: untitled });
  assert.equal(inline.ok, false);
  assert.ok(inline.diagnostics.some((d) => d.rule === 'required' && d.message.includes('task_id')),
    JSON.stringify(inline.diagnostics));
  assert.ok(inline.diagnostics.every((d) => d.file === '(inline contract)'));
  assert.equal((await callOk(client, 'validate_contract', { contract: noop() })).ok, true);

  await callRefused(client, 'validate_contract', { path: '../outside.json' }, /'\.\.'/);
  await callRefused(client, 'validate_contract', { path: path.join(tmp, 'outside.json') }, /absolute/);
  await callRefused(client, 'validate_contract', { path: 'contracts/escape.json' }, /out of the project root/);
  await callRefused(client, 'validate_contract', { path: 'contracts/none.json' }, /does not exist/);
  await callRefused(client, 'validate_contract', { path: 'contracts' }, /not a regular file/);
  await callRefused(client, 'validate_contract', {}, /either inline/);
  await callRefused(client, 'validate_contract', { contract: noop(), path: 'contracts/broken.json' }, /either/);
});

test('bad calls are protocol errors, and the server keeps serving', async () => {
  const client = await connect();
  await rejectsWith(client.callTool({ name: 'no_such_tool', arguments: {} }), -32602);
  await rejectsWith(client.callTool({ name: 'list_runs', arguments: { bogus: 1 } }), -32602);
  await rejectsWith(client.callTool({ name: 'list_runs', arguments: { limit: 'ten' } }), -32602);
  await rejectsWith(client.callTool({ name: 'list_runs', arguments: { limit: 100000 } }), -32602);
  await rejectsWith(client.callTool({ name: 'show_run', arguments: {} }), -32602);
  await rejectsWith(client.callTool({ name: 'show_run', arguments: { run_id: 'x'.repeat(5000) } }), -32602);
  await rejectsWith(client.request({ method: 'resources/list', params: {} }, sdk.ListResourcesResultSchema), -32601);
  assert.deepEqual(await client.ping(), {});
  assert.equal((await callOk(client, 'list_runs')).count, 1);
});

test('without --allow-writes a write tool is refused and nothing is written', async () => {
  const client = await connect();
  const queueDir = path.join(root, '.runtime-cache/cortexpilot/queue');
  const keptDir = path.join(queueDir, 'contracts');
  const kept = () => (fs.existsSync(keptDir) ? fs.readdirSync(keptDir) : []);
  await callRefused(client, 'submit_contract', { path: 'contracts/examples/noop.json' }, /--allow-writes/);
  await callRefused(client, 'submit_contract', { contract: noop() }, /--allow-writes/);
  await callRefused(client, 'cancel_queue_item', { item_id: 'q-1' }, /--allow-writes/);
  await callRefused(client, 'approve_run', { run_id: runId }, /--allow-writes/);
  await callRefused(client, 'reject_run', { run_id: runId }, /--allow-writes/);
  assert.deepEqual((await callOk(client, 'queue_list')).items, []);
  assert.deepEqual(queueItems(), []);
  assert.deepEqual(kept(), []);
  assert.equal((await callOk(client, 'show_run', { run_id: runId })).verdict, 'success');
});

// ---- the raw protocol: what the SDK would never send ----------------------------------------------------

function rawServer() {
  const child = spawn(bin, ['--root', root, 'mcp'], { env: cpEnv(), cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let pending = '';
  const lines = [];
  const waiters = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    pending += d;
    for (let nl; (nl = pending.indexOf('\n')) >= 0;) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      // Everything on stdout is one JSON-RPC message per line.
      const msg = JSON.parse(line);
      assert.equal(msg.jsonrpc, '2.0');
      if (waiters.length) waiters.shift()(msg);
      else lines.push(msg);
    }
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return {
    send(text) { child.stdin.write(text.endsWith('\n') ? text : text + '\n'); },
    next() {
      if (lines.length) return Promise.resolve(lines.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer; stderr: ${stderr}`)), 30000);
        waiters.push((m) => { clearTimeout(timer); resolve(m); });
      });
    },
    async ask(msg) { this.send(typeof msg === 'string' ? msg : JSON.stringify(msg)); return this.next(); },
    async end() { child.stdin.end(); return exited; },
    stderr: () => stderr,
  };
}

test('hostile protocol input is answered with JSON-RPC errors, one message per line', async () => {
  const s = rawServer();
  const init = (id, protocolVersion) => ({ jsonrpc: '2.0', id, method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
  assert.equal((await s.ask(init(1, '2024-11-05'))).result.protocolVersion, '2024-11-05');
  assert.equal((await s.ask(init(2, '2025-03-26'))).result.protocolVersion, '2025-03-26');
  assert.equal((await s.ask(init(3, '1999-01-01'))).result.protocolVersion, '2025-06-18');
  assert.equal((await s.ask({ jsonrpc: '2.0', id: 4, method: 'initialize', params: {} })).error.code, -32602);

  const notJson = await s.ask('{"jsonrpc": "2.0", "id": 5, "method": ');
  assert.equal(notJson.error.code, -32700);
  assert.equal(notJson.id, null);
  assert.equal((await s.ask('['.repeat(200000))).error.code, -32700);
  assert.equal((await s.ask('[{"jsonrpc":"2.0","id":6,"method":"ping"}]')).error.code, -32600);
  assert.equal((await s.ask('"just a string"')).error.code, -32600);
  assert.equal((await s.ask({ jsonrpc: '2.0', id: { a: 1 }, method: 'ping' })).error.code, -32600);
  assert.equal((await s.ask({ jsonrpc: '1.0', id: 7, method: 'ping' })).error.code, -32600);
  assert.equal((await s.ask({ jsonrpc: '2.0', id: 8, method: 42 })).error.code, -32600);
  const badParams = await s.ask({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: 'all' });
  assert.deepEqual([badParams.id, badParams.error.code], [9, -32602]);
  const toolCall = (id, params) => s.ask({ jsonrpc: '2.0', id, method: 'tools/call', params });
  assert.equal((await toolCall(10, { name: 'list_runs', arguments: [] })).error.code, -32602);
  assert.equal((await toolCall(11, { arguments: {} })).error.code, -32602);
  const unknown = await s.ask({ jsonrpc: '2.0', id: 'twelve', method: 'prompts/list' });
  assert.deepEqual([unknown.id, unknown.error.code], ['twelve', -32601]);

  // Over 4 MiB in one line: dropped unread, answered, and the next line is served as usual.
  const pad = 'x'.repeat(5 << 20);
  const huge = await s.ask(JSON.stringify({ jsonrpc: '2.0', id: 13, method: 'ping', params: { pad } }));
  assert.equal(huge.error.code, -32700);
  assert.match(huge.error.message, /4 MiB/);
  // Notifications and responses are never answered: the next answer is the ping's.
  s.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  s.send(JSON.stringify({ jsonrpc: '2.0', method: 'no/such/notification', params: 'x' }));
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 99, result: {} }));
  s.send('\r\n');
  assert.deepEqual(await s.ask({ jsonrpc: '2.0', id: 14, method: 'ping' }), { jsonrpc: '2.0', id: 14, result: {} });
  const listed = await s.ask({ jsonrpc: '2.0', id: 15, method: 'tools/call', params: { name: 'list_runs' } });
  assert.equal(listed.result.structuredContent.runs[0].run_id, runId);
  assert.equal(await s.end(), 0, s.stderr());
  assert.match(s.stderr(), /serving MCP/);
});

// ---- writes --------------------------------------------------------------------------------------------

test('--allow-writes with an operator token submits, cancels and decides', async () => {
  const client = await connect(['--allow-writes', '--tokens', tokens, '--repo', repo],
    { CP_HOST_TOKEN: operatorToken });
  const names = (await client.listTools()).tools.map((t) => t.name);
  for (const t of [...READ_TOOLS, ...WRITE_TOOLS]) assert.ok(names.includes(t), `${t} is listed`);

  const item = await callOk(client, 'submit_contract', { path: 'contracts/examples/noop.json', priority: 7 });
  assert.equal(item.state, 'queued');
  assert.equal(item.task_id, 'noop');
  assert.equal(item.priority, 7);
  const queued = queueItems();
  assert.deepEqual(queued.map((i) => [i.item_id, i.state]), [[item.item_id, 'queued']]);
  assert.deepEqual((await callOk(client, 'queue_list')).items.map((i) => i.item_id), [item.item_id]);

  // An invalid contract, or a repository the server may not run on, queues nothing.
  const invalid = await callRefused(client, 'submit_contract',
    { contract: { ...noop(), runtime_options: { runner: 'tool', pack: 'no-such-pack', commands: ['true'] } } },
    /not valid; nothing was queued/);
  assert.ok(invalid.structuredContent.diagnostics.length > 0);
  await callRefused(client, 'submit_contract', { contract: noop(), repo: tmp }, /--allow-repo/);
  await callRefused(client, 'submit_contract', { path: 'contracts/escape.json' }, /out of the project root/);
  assert.equal(queueItems().length, 1);

  // The run is sealed already: nothing to decide, and the refusal says so.
  const approve = await callRefused(client, 'approve_run', { run_id: runId, reason: 'looks good' }, /./);
  assert.equal(approve.structuredContent.outcome, 'not_awaiting');
  await callRefused(client, 'approve_run', { run_id: '../x' }, /is not a run id/);

  // Runs waiting for a decision: one approved, one rejected, each sealed by the decision.
  const toApprove = runAwaitingApproval('approve-me');
  const toReject = runAwaitingApproval('reject-me');
  const pending = await callOk(client, 'approvals_list');
  assert.deepEqual(pending.approvals.map((p) => p.run_id).sort(), [toApprove, toReject].sort());
  const approved = await callOk(client, 'approve_run', { run_id: toApprove, reason: 'reviewed the diff' });
  assert.equal(approved.outcome, 'approved');
  assert.equal(approved.exit_code, 0);
  assert.equal(approved.verdict, 'success');
  const rejected = await callOk(client, 'reject_run', { run_id: toReject, reason: 'not now' });
  assert.equal(rejected.outcome, 'rejected');
  assert.equal(rejected.verdict, 'denied');
  const decided = JSON.parse(cpHost(['runs', 'show', toApprove, '--json']).stdout);
  assert.equal(decided.verdict, 'success');
  // The token holder is recorded as who decided, as the API records its callers.
  assert.deepEqual([decided.approval.decision.by, decided.approval.decision.by_kind, decided.approval.state],
    ['op', 'token', 'approved']);
  assert.equal(approved.approval.approvals[0].reason, 'reviewed the diff');
  assert.equal(JSON.parse(cpHost(['runs', 'show', toReject, '--json']).stdout).verdict, 'denied');
  assert.equal(cpHost(['runs', 'verify', toApprove]).status, 0, 'the approved bundle verifies');
  assert.deepEqual((await callOk(client, 'approvals_list')).approvals, []);

  const cancelled = await callOk(client, 'cancel_queue_item', { item_id: item.item_id, reason: 'test' });
  assert.deepEqual(cancelled, { item_id: item.item_id, outcome: 'cancelled' });
  assert.equal(queueItems()[0].state, 'cancelled');
  await callRefused(client, 'cancel_queue_item', { item_id: item.item_id }, /already ended/);
  await callRefused(client, 'cancel_queue_item', { item_id: 'no-such-item' }, /no queue item/);
});

test('a viewer token reads but cannot write, and its refused submission queues nothing', async () => {
  const before = queueItems().length;
  const waiting = runAwaitingApproval('viewer-cannot-approve');
  const client = await connect(['--allow-writes', '--tokens', tokens, '--token-file', viewerTokenFile]);
  const names = (await client.listTools()).tools.map((t) => t.name);
  for (const t of WRITE_TOOLS) assert.ok(!names.includes(t), `${t} is not listed for a viewer`);
  await callRefused(client, 'submit_contract', { path: 'contracts/examples/noop.json' }, /role viewer/);
  await callRefused(client, 'approve_run', { run_id: waiting }, /role viewer/);
  await callRefused(client, 'reject_run', { run_id: waiting }, /role viewer/);
  assert.equal(queueItems().length, before);
  assert.equal((await callOk(client, 'show_run', { run_id: waiting })).status, 'awaiting_approval');
  assert.deepEqual((await callOk(client, 'approvals_list')).approvals.map((p) => p.run_id), [waiting]);
});

test('a decision asked from inside a run is refused (exit code 11), whatever the token', async () => {
  const client = await connect(['--allow-writes', '--tokens', tokens],
    { CP_HOST_TOKEN: operatorToken, CP_RUN_ID: runId });
  const [waiting] = (await callOk(client, 'approvals_list')).approvals.map((p) => p.run_id);
  assert.ok(waiting, 'a run awaits approval');
  const r = await callRefused(client, 'approve_run', { run_id: waiting }, /run/);
  assert.equal(r.structuredContent.outcome, 'from_run');
  assert.equal(r.structuredContent.exit_code, 11);
  const rejected = await callRefused(client, 'reject_run', { run_id: waiting }, /run/);
  assert.equal(rejected.structuredContent.exit_code, 11);
  assert.equal((await callOk(client, 'show_run', { run_id: waiting })).status, 'awaiting_approval');
});

test('--allow-writes without a token the token file knows does not start', () => {
  const run = (args, extra) => spawnSync(bin, ['--root', root, 'mcp', ...args],
    { env: cpEnv(extra), cwd: root, encoding: 'utf8', input: '' });
  const unknown = run(['--allow-writes', '--tokens', tokens], { CP_HOST_TOKEN: 'cpt_' + '0'.repeat(64) });
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /not in/);
  assert.equal(unknown.stdout, '');
  const none = run(['--allow-writes', '--tokens', tokens], {});
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--allow-writes needs --tokens FILE/);
  const noFile = run(['--allow-writes'], { CP_HOST_TOKEN: operatorToken });
  assert.equal(noFile.status, 2);
});
