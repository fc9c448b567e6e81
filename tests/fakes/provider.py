#!/usr/bin/env python3
"""A fake OpenAI-compatible provider for cp-host's tests: POST /v1/chat/completions on 127.0.0.1, behaviour
chosen by the request's model:
  tool-model     tool calls: fix src/greeting.sh, run the test, then a final answer; answers cp_ping probes
  chat-model     text only, never a tool call (a chat-only provider that ignores tools)
  notools-model  HTTP 400 "tools are not supported" whenever tools are sent
  outside-model  writes ../escape.txt (must be refused) and notes.txt (outside allowed_paths), then answers
  escape-model   run_command with escapes (cp/sed w to ../../canary.txt), a forbidden git push and a 200 KB
                 argument (all must be declined), then the real fix, then answers
  loop-model     calls read_file forever
  symlink-model  runs `sh scripts/link_out.sh` (the test's script: src/link -> a folder outside the worktree,
                 src/secret-link -> a file there), then writes and reads through both links (all must be
                 refused), then the real fix (src/greeting.sh and a new nested src/notes/deep/ok.txt, read
                 back), then answers
  swap-model     runs `sh scripts/swap.sh` (the test's script: a background process that keeps exchanging
                 src/d with a symlink to a folder outside), then 40 turns of write_file and read_file of
                 src/d/x, then answers
  rate-model     HTTP 429 always;  error-model  HTTP 500 always
  planner-model  the llm planner's model: while the planner input (the last user message, JSON) has no answers,
                 questions for the fix-bug pack's test_command; then a plan (in a ```json fence) that fixes
                 src/greeting.sh with the tool runner and checks it in a second step
  badplan-model  a plan that breaks plan_bundle.schema.json (no summary, steps not a list)
  packplan-model for the fix-bug pack: questions for test_command and governance, then the pack's chain
                 rendered faithfully with the answers (the tool runner fixing the greeting with one sed)
  overrule-model the same questions, then the same rendering with the model's own governance (low) and
                 test_command (`true`) in place of the person's answers
  prose-model    prose instead of JSON
  slow-model     accepts the request and answers nothing for 60 s (probes included)
  drip-model     probes answered; otherwise a 200 whose promised 100 KB body comes one byte every 0.2 s
  echokey-model  probes answered; otherwise content that repeats the request's Authorization header
  echokey-error-model  probes answered; otherwise HTTP 500 whose error message repeats that header
Every request needs `Authorization: Bearer test-key`, else HTTP 401.
Usage: provider.py PORT_FILE [LOG_FILE]   (binds an ephemeral port and writes it to PORT_FILE; with LOG_FILE,
every request body is appended to it as one JSON line, so a test can see what reached the provider)"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXED_GREETING = "#!/bin/sh\n# Prints the greeting of the sample project.\necho \"Hello, world\"\n"
LOG_FILE = sys.argv[2] if len(sys.argv) > 2 else None
LOG_LOCK = threading.Lock()
SWAP_TURNS = 40


def tool_call(n, name, args):
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def reply(handler, status, doc):
    body = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def completion(model, message):
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


GOOD_PLAN = {
    "schema_version": 1, "task_pack": None, "title": "Fix the greeting",
    "summary": "The greeting says Helo; make it say Hello and keep its test green.",
    "steps": [
        {"step_id": "fix", "kind": "task", "role": "WORKER", "title": "Fix the greeting typo", "runner": "tool",
         "pack": "low", "instruction": "Fix the typo in src/greeting.sh.", "allowed_paths": ["src/"],
         "commands": ["sed -i s/Helo/Hello/ src/greeting.sh"],
         "acceptance_tests": [{"name": "greeting", "cmd": "sh tests/test_greeting.sh"}]},
        {"step_id": "fix-to-verify", "kind": "handoff", "from_role": "WORKER", "to_role": "TESTING",
         "summary": "The typo is fixed."},
        {"step_id": "verify", "kind": "task", "role": "TESTING", "title": "Run the greeting test", "runner": "tool",
         "pack": "low", "instruction": "Run the greeting test.", "allowed_paths": ["tests/"],
         "acceptance_tests": [{"name": "greeting", "cmd": "sh tests/test_greeting.sh"}]},
    ],
}


def rendered_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return ", ".join(rendered_text(x) for x in v)
    return ""


def has_value(values, name):
    v = values.get(name)
    if isinstance(v, (str, list)):
        return len(v) > 0
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    return v is not None


def fill(text, values):
    out, at = "", 0
    while True:
        o = text.find("{{", at)
        c = -1 if o < 0 else text.find("}}", o + 2)
        if c < 0:
            return out + text[at:]
        out += text[at:o]
        name = text[o + 2:c]
        if name in values:
            out += rendered_text(values[name])
        at = c + 2


def render(node, values):
    """A task pack's chain rendered with field values, as the template planner renders it."""
    if isinstance(node, str):
        return fill(node, values)
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, str) and len(item) > 4 and item.startswith("{{") and item.find("}}") == len(item) - 2 \
                    and item.find("{{", 2) < 0:
                name = item[2:-2]
                if has_value(values, name):
                    v = values[name]
                    out.extend(v) if isinstance(v, list) else out.append(rendered_text(v))
                continue
            out.append(render(item, values))
        return out
    if isinstance(node, dict):
        return {k: render(v, values) for k, v in node.items()}
    return node


def pack_plan(model, req, answers):
    """fix-bug rendered with the answers (overrule-model: with its own governance and test command)."""
    packs = json.loads(req["messages"][0]["content"].split("Task packs:\n", 1)[1])
    pack = [p for p in packs if p["name"] == "fix-bug"][0]
    values = {"bug": "The greeting says Helo instead of Hello.", "paths": ["src/greeting.sh"], "runner": "tool",
              "commands": ["sed -i s/Helo/Hello/ src/greeting.sh"]}
    values.update(answers)
    if model == "overrule-model":
        values.update({"governance": "low", "test_command": "true"})
    for f in pack["fields"]:
        if "default" in f and f["name"] not in values:
            values[f["name"]] = f["default"]
    steps = []
    for st in pack["chain"]["steps"]:
        if isinstance(st.get("when"), str) and not has_value(values, st["when"]):
            continue
        step = render(st, values)
        step.pop("when", None)
        steps.append(step)
    return {"schema_version": 1, "task_pack": "fix-bug", "title": fill(pack["chain"]["title"], values)[:200],
            "summary": fill(pack["chain"]["summary"], values)[:4000], "fields": values, "steps": steps}


def planner_answer(model, req):
    if model == "prose-model":
        return "Sure! First I would look at src/greeting.sh, then fix the typo."
    if model == "badplan-model":
        return json.dumps({"status": "plan", "plan": {"schema_version": 1, "title": "Fix it", "steps": "fix the bug"}})
    planner_input = json.loads(req["messages"][-1]["content"])
    if model in ("packplan-model", "overrule-model"):
        if not planner_input.get("answers"):
            return json.dumps({"status": "questions", "task_pack": "fix-bug", "questions": [
                {"id": "test_command-1", "field": "test_command", "text": "Which command runs the failing test?"},
                {"id": "governance-1", "field": "governance", "text": "Which governance pack?",
                 "choices": ["low", "medium", "high"]}]})
        return json.dumps({"status": "plan", "plan": pack_plan(model, req, planner_input["answers"])})
    if not planner_input.get("answers"):
        return json.dumps({"status": "questions", "task_pack": "fix-bug", "questions": [
            {"id": "test_command-1", "field": "test_command", "text": "Which command runs the failing test?"}]})
    plan = dict(GOOD_PLAN, fields=planner_input["answers"])
    return "```json\n" + json.dumps({"status": "plan", "plan": plan}) + "\n```"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) or b"{}"
        if LOG_FILE:
            with LOG_LOCK, open(LOG_FILE, "ab") as log:
                log.write(body.replace(b"\n", b" ") + b"\n")
        req = json.loads(body)
        if not self.path.endswith("/chat/completions"):
            return reply(self, 404, {"error": {"message": "no such route"}})
        if self.headers.get("Authorization") != "Bearer test-key":
            return reply(self, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        model = req.get("model", "")
        tools = [t["function"]["name"] for t in req.get("tools", [])]
        done = sum(1 for m in req.get("messages", []) if m.get("role") == "tool")
        if model == "rate-model":
            return reply(self, 429, {"error": {"message": "Rate limit reached"}})
        if model == "error-model":
            return reply(self, 500, {"error": {"message": "internal error"}})
        if model == "slow-model":
            time.sleep(60)
            return
        if model == "drip-model" and "cp_ping" not in tools:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(300):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
            return
        if model == "echokey-model" and "cp_ping" not in tools:
            said = "the key you sent: " + self.headers.get("Authorization", "")
            return reply(self, 200, completion(model, {"content": said}))
        if model == "echokey-error-model" and "cp_ping" not in tools:
            return reply(self, 500, {"error": {"message": "upstream refused " + self.headers.get("Authorization", "")}})
        if model == "notools-model" and tools:
            return reply(self, 400, {"error": {"message": "tools are not supported by this model"}})
        if model == "chat-model" or model == "notools-model":
            return reply(self, 200, completion(model, {"content": "I can only talk."}))
        if "cp_ping" in tools:
            return reply(self, 200, completion(model, {"content": None, "tool_calls": [tool_call(0, "cp_ping", {})]}))
        if model in ("planner-model", "badplan-model", "prose-model", "packplan-model", "overrule-model"):
            return reply(self, 200, completion(model, {"content": planner_answer(model, req)}))
        if model == "loop-model":
            return reply(self, 200, completion(model, {"content": None, "tool_calls": [tool_call(done, "read_file", {"path": "src/greeting.sh"})]}))
        if model == "outside-model":
            if done == 0:
                return reply(self, 200, completion(model, {"content": None, "tool_calls": [
                    tool_call(0, "write_file", {"path": "../escape.txt", "content": "x"}),
                    tool_call(1, "write_file", {"path": "notes.txt", "content": "outside\n"})]}))
            return reply(self, 200, completion(model, {"content": "Done."}))
        turns = sum(1 for m in req.get("messages", []) if m.get("role") == "assistant")
        if model == "symlink-model":
            steps = [
                [tool_call(0, "run_command", {"command": "sh scripts/link_out.sh"})],
                [tool_call(1, "write_file", {"path": "src/link/pwned.txt", "content": "pwned\n"}),
                 tool_call(2, "read_file", {"path": "src/link/secret.txt"}),
                 tool_call(3, "write_file", {"path": "src/link/new/deeper.txt", "content": "pwned\n"}),
                 tool_call(4, "read_file", {"path": "src/secret-link"}),
                 tool_call(5, "write_file", {"path": "src/secret-link", "content": "overwritten\n"})],
                [tool_call(6, "write_file", {"path": "src/greeting.sh", "content": FIXED_GREETING}),
                 tool_call(7, "write_file", {"path": "src/notes/deep/ok.txt", "content": "ok\n"}),
                 tool_call(8, "read_file", {"path": "src/notes/deep/ok.txt"})],
            ]
            if turns < len(steps):
                return reply(self, 200, completion(model, {"content": None, "tool_calls": steps[turns]}))
            return reply(self, 200, completion(model, {"content": "Done."}))
        if model == "swap-model":
            if turns == 0:
                return reply(self, 200, completion(model, {"content": None, "tool_calls": [
                    tool_call(0, "run_command", {"command": "sh scripts/swap.sh"})]}))
            if turns <= SWAP_TURNS:
                calls = [tool_call(2 * turns - 1, "write_file", {"path": "src/d/x", "content": "pwned\n"}),
                         tool_call(2 * turns, "read_file", {"path": "src/d/x"})]
                return reply(self, 200, completion(model, {"content": None, "tool_calls": calls}))
            return reply(self, 200, completion(model, {"content": "Done."}))
        if model == "escape-model":
            if done == 0:
                return reply(self, 200, completion(model, {"content": None, "tool_calls": [
                    tool_call(0, "run_command", {"command": "cp src/greeting.sh ../../canary.txt"}),
                    tool_call(1, "run_command", {"command": "sed -i 's/Helo/Hello/w ../../canary.txt' src/greeting.sh"}),
                    tool_call(2, "run_command", {"command": "git push origin main"}),
                    tool_call(3, "run_command", {"command": "echo " + "a" * (200 * 1024)}),
                    tool_call(4, "run_command", {"command": "sed -i s/Helo/Hello/ src/greeting.sh"})]}))
            return reply(self, 200, completion(model, {"content": "Done."}))
        steps = [
            [tool_call(0, "read_file", {"path": "src/greeting.sh"})],
            [tool_call(1, "write_file", {"path": "src/greeting.sh", "content": FIXED_GREETING})],
            [tool_call(2, "run_command", {"command": "git status --short"})],
        ]
        if done < len(steps):
            return reply(self, 200, completion(model, {"content": None, "tool_calls": steps[done]}))
        return reply(self, 200, completion(model, {"content": "Fixed the greeting; the test passes."}))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
