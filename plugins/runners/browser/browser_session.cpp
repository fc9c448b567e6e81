#include "browser_session.hpp"

#include <boost/beast/core/detail/base64.hpp>

#include <cstring>
#include <thread>

namespace cp::browser {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxText = 2000;        // longest URL or message an event carries
constexpr int kMaxConsoleLines = 10000;  // console.jsonl lines kept per task
constexpr int kMaxConsoleErrorEvents = 200;
// What a worker's WebSocket guard logs when it refuses one, before the URL.
constexpr const char* kWebSocketRefused =
    "cp-host refused a WebSocket to ";  // BROWSER_CONSOLE_ERROR events per task (the count goes on)

std::string cut(const std::string& s, size_t n = kMaxText) {
  return s.size() <= n ? s : s.substr(0, n) + "…";
}

std::string initiator_of(const json& request_will_be_sent) {
  if (request_will_be_sent.contains("redirectResponse")) return "redirect";
  const json init = request_will_be_sent.value("initiator", json::object());
  std::string type = init.value("type", "other");
  if (init.contains("url") && init["url"].is_string() && !init["url"].get<std::string>().empty())
    return type + " " + cut(init["url"].get<std::string>(), 500);
  return type;
}

// Every request is paused before it leaves (the URL policy); documents and scripts once more when their
// response arrives, to carry the connect-src rule below.
json fetch_patterns() {
  return json::array({{{"urlPattern", "*"}, {"requestStage", "Request"}},
                      {{"urlPattern", "*"}, {"resourceType", "Document"}, {"requestStage", "Response"}},
                      {{"urlPattern", "*"}, {"resourceType", "Script"}, {"requestStage", "Response"}},
                      // Worker scripts (dedicated, shared, service) arrive as "Other".
                      {{"urlPattern", "*"}, {"resourceType", "Other"}, {"requestStage", "Response"}}});
}

}  // namespace

std::string js_literal(const std::string& s) {
  return json(s).dump();
}

BrowserSession::BrowserSession(cp::Context ctx, UrlPolicy policy, Budgets budgets)
    : ctx_(ctx), policy_(std::move(policy)), budgets_(budgets) {
  // http(s) origins and their ws(s) twins; nothing else may be connected to from a page or a worker.
  std::string sources;
  for (const auto& o : policy_.origins()) {
    std::string host =
        (o.subdomains ? "*." : "") + (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host);
    std::string port = o.port == -1 ? "*" : std::to_string(o.port);
    std::string ws = o.scheme == "https" ? "wss" : "ws";
    sources += " " + o.scheme + "://" + host + ":" + port + " " + ws + "://" + host + ":" + port;
  }
  connect_src_ = "connect-src" + (sources.empty() ? std::string(" 'none'") : sources);
  json allowed = json::array();
  for (const auto& o : policy_.origins()) allowed.push_back({o.scheme, o.host, o.port, o.subdomains});
  websocket_guard_ =
      "(() => { const W = self.WebSocket; if (typeof W !== 'function') return;"
      " const allowed = " +
      allowed.dump() +
      ";"
      " const dflt = {'ws:': 80, 'wss:': 443, 'http:': 80, 'https:': 443};"
      " const ok = (raw) => { let u; try { u = new URL(String(raw), self.location.href); } catch (e) { "
      "return false; }"
      "  const scheme = u.protocol === 'ws:' ? 'http' : u.protocol === 'wss:' ? 'https' : "
      "u.protocol.slice(0, -1);"
      "  const host = u.hostname.replace(/^\\[|\\]$/g, '').toLowerCase();"
      "  const port = u.port ? Number(u.port) : dflt[u.protocol];"
      "  return allowed.some(([s, h, p, sub]) => s === scheme && (p === -1 || p === port) &&"
      "   (host === h || (sub && host.endsWith('.' + h)))); };"
      " const Guard = function WebSocket(url, protocols) {"
      "  if (!ok(url)) { console.error('" +
      std::string(kWebSocketRefused) +
      "' + String(url));"
      "   throw new DOMException('refused by the run\\'s browser policy', 'SecurityError'); }"
      "  return protocols === undefined ? new W(url) : new W(url, protocols); };"
      " Guard.prototype = W.prototype;"
      " for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Guard[k] = W[k];"
      " Object.defineProperty(W.prototype, 'constructor', {value: Guard, writable: false, configurable: "
      "false});"
      " Object.defineProperty(self, 'WebSocket', {value: Guard, writable: false, configurable: false}); })()";
}

BrowserSession::~BrowserSession() {
  cdp_.reset();  // joins the I/O thread before the members its handler touches go
}

json BrowserSession::call(const std::string& method, const json& params, milliseconds timeout) {
  try {
    return cdp_->call(method, params, page_session_, timeout);
  } catch (const CdpError& e) {
    if (auto f = fatal()) throw *f;
    if (!cdp_->open()) throw StepFailure("error", "the browser went away: " + cdp_->close_reason());
    std::string what = e.what();
    if (what.find("no answer within") != std::string::npos)
      throw StepFailure("timeout", method + ": " + what);
    throw StepFailure("failed", method + ": " + what);
  }
}

void BrowserSession::open(const std::string& ws_url, bool own_context, milliseconds timeout) {
  cdp_ = std::make_unique<CdpClient>(
      ws_url, [this](const std::string& m, const json& p, const std::string& s) { on_event(m, p, s); },
      timeout);
  json create{{"url", "about:blank"}};
  if (own_context) {
    browser_context_ =
        cdp_->call("Target.createBrowserContext", {{"disposeOnDetach", true}}).value("browserContextId", "");
    create["browserContextId"] = browser_context_;
  }
  // Downloads: denied unless the policy allows them, and then only into the run's evidence. Events
  // report an attempt either way.
  json dl{{"behavior", "deny"}, {"eventsEnabled", true}};
  if (!browser_context_.empty()) dl["browserContextId"] = browser_context_;
  if (policy_.downloads_allowed()) {
    dl["behavior"] = "allowAndName";
    dl["downloadPath"] = ctx_.bundle_dir() + "/artifacts/browser/downloads";
  }
  cdp_->call("Browser.setDownloadBehavior", dl);
  // Every target of the browser — the run's page, pages it opens (popups, target=_blank), service and
  // shared workers — is attached paused, and resumes only once its interception is on (on_attached).
  cdp_->call("Target.setAutoAttach", {{"autoAttach", true},
                                      {"waitForDebuggerOnStart", true},
                                      {"flatten", true},
                                      {"filter", json::array({{{"type", "browser"}, {"exclude", true}},
                                                              {{"type", "tab"}, {"exclude", true}},
                                                              json::object()})}});
  target_id_ = cdp_->call("Target.createTarget", create).value("targetId", "");
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return page_sessions_.count(target_id_) > 0; }))
      throw CdpError("the browser never attached the run's page");
    page_session_ = page_sessions_[target_id_];
  }
  for (const char* domain : {"Page.enable", "Log.enable"}) cdp_->call(domain, json::object(), page_session_);
  // A service worker must not answer the page's requests from a cache the policy never saw.
  cdp_->call("Network.setBypassServiceWorker", {{"bypass", true}}, page_session_);
  json tree = cdp_->call("Page.getFrameTree", json::object(), page_session_);
  main_frame_ = tree["frameTree"]["frame"].value("id", "");
  cdp_->call("Page.setLifecycleEventsEnabled", {{"enabled", true}}, page_session_);
}

void BrowserSession::close(bool close_browser) {
  if (!cdp_ || !cdp_->open()) return;
  try {
    if (!target_id_.empty())
      cdp_->call("Target.closeTarget", {{"targetId", target_id_}}, "", milliseconds(5000));
    if (!browser_context_.empty())
      cdp_->call("Target.disposeBrowserContext", {{"browserContextId", browser_context_}}, "",
                 milliseconds(5000));
    if (close_browser) cdp_->call("Browser.close", json::object(), "", milliseconds(5000));
  } catch (const std::exception&) {
    // The caller stops the process anyway when it was the run's own.
  }
}

void BrowserSession::begin_task(const std::string& task, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::lock_guard lock(mu_);
  task_ = task;
  task_console_errors_ = 0;
  task_console_lines_ = 0;
  console_out_ = std::ofstream(dir / "console.jsonl", std::ios::app);
  network_out_ = std::ofstream(dir / "network.jsonl", std::ios::app);
}

void BrowserSession::end_task() {
  std::lock_guard lock(mu_);
  // Requests still open when the task ends are logged as they stand.
  for (auto& [id, r] : inflight_) {
    r["status"] = r.value("status", 0);
    r["unfinished"] = true;
    write_line(network_out_, r);
  }
  inflight_.clear();
  console_out_.close();
  network_out_.close();
}

void BrowserSession::write_line(std::ofstream& out, const json& line) {
  if (out.is_open()) out << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
}

void BrowserSession::emit(const std::string& type, const json& payload) {
  try {
    ctx_.emit(type, payload.dump(-1, ' ', false, json::error_handler_t::replace));
  } catch (const std::exception&) {
    // The host refused the event (run over); the evidence files still hold it.
  }
}

void BrowserSession::set_fatal(const std::string& kind, const std::string& why) {
  std::lock_guard lock(mu_);
  if (!fatal_) fatal_.emplace(kind, why);
  cv_.notify_all();
}

std::optional<StepFailure> BrowserSession::fatal() const {
  std::lock_guard lock(mu_);
  return fatal_;
}

int BrowserSession::console_errors() const {
  std::lock_guard lock(mu_);
  return task_console_errors_;
}

json BrowserSession::summary() const {
  std::lock_guard lock(mu_);
  return {{"pages", pages_},
          {"requests", requests_},
          {"blocked_requests", blocked_},
          {"console_errors", console_errors_total_},
          {"cdp_messages", cdp_ ? cdp_->messages_received() : 0}};
}

void BrowserSession::on_event(const std::string& method, const json& params, const std::string& session) {
  if (method == "Fetch.requestPaused") return on_request_paused(params, session);
  if (method.rfind("Network.", 0) == 0) return on_network(method, params);
  if (method == "Target.attachedToTarget") return on_attached(params);
  if (method == "Audits.issueAdded") {
    // Requests Blink refused under the run's connect-src (WebSockets, which Fetch never sees, and the
    // fetches, beacons and event streams it stops before they are made): recorded here.
    const json issue = params.value("issue", json::object());
    if (issue.value("code", "") != "ContentSecurityPolicyIssue") return;
    const json d =
        issue.value("details", json::object()).value("contentSecurityPolicyIssueDetails", json::object());
    std::string url = d.value("blockedURL", "");
    if (url.empty() || d.value("violatedDirective", "") != "connect-src") return;
    std::string reason = policy_.refusal(url);
    if (reason.empty()) reason = "refused by the run's connect-src policy";
    record_blocked(url, "GET", url.rfind("ws", 0) == 0 ? "WebSocket" : "Fetch", "script", reason);
    return;
  }
  if (method == "Runtime.consoleAPICalled") {
    std::string text;
    for (const auto& a : params.value("args", json::array())) {
      if (!text.empty()) text += ' ';
      if (a.contains("value"))
        text += a["value"].is_string() ? a["value"].get<std::string>() : a["value"].dump();
      else
        text += a.value("description", a.value("type", ""));
    }
    if (text.rfind(kWebSocketRefused, 0) == 0)
      record_refused_websocket(text.substr(std::strlen(kWebSocketRefused)));
    std::string type = params.value("type", "log");
    const json frames = params.value("stackTrace", json::object()).value("callFrames", json::array());
    std::string url = frames.empty() ? "" : frames[0].value("url", "");
    int line = frames.empty() ? 0 : frames[0].value("lineNumber", 0) + 1;
    return on_console(type == "error" || type == "assert" ? "error" : type, text, url, line);
  }
  if (method == "Runtime.exceptionThrown") {
    const json d = params.value("exceptionDetails", json::object());
    std::string text =
        d.value("exception", json::object()).value("description", d.value("text", "exception"));
    return on_console("error", "uncaught " + text, d.value("url", ""), d.value("lineNumber", 0) + 1);
  }
  if (method == "Log.entryAdded") {
    const json e = params.value("entry", json::object());
    return on_console(e.value("level", "info"), e.value("text", ""), e.value("url", ""),
                      e.value("lineNumber", 0) + 1);
  }
  if (method == "Page.loadEventFired" && session == page_session_) {
    std::lock_guard lock(mu_);
    ++loads_;
    cv_.notify_all();
    return;
  }
  if (method == "Page.frameNavigated" && session == page_session_) {
    const json f = params.value("frame", json::object());
    if (f.contains("parentId")) return;
    bool over = false;
    {
      std::lock_guard lock(mu_);
      over = ++pages_ > budgets_.max_pages;
    }
    if (over)
      set_fatal("failed",
                "browser budget exceeded: more than " + std::to_string(budgets_.max_pages) + " pages");
    return;
  }
  if (method == "Page.javascriptDialogOpening") {
    // A dialog would block the page forever: dismiss it and keep the text.
    // beforeunload is accepted: refusing it would cancel the navigation the next step asked for.
    cdp_->send("Page.handleJavaScriptDialog", {{"accept", params.value("type", "") == "beforeunload"}},
               session);
    return on_console("warning", "dialog dismissed: " + params.value("message", ""), params.value("url", ""),
                      0);
  }
  if (method == "Browser.downloadWillBegin") {
    std::string url = params.value("url", "");
    if (!policy_.downloads_allowed())
      record_blocked(url, "GET", "Download", "download", "downloads are denied by the browser policy");
    return;
  }
  if ((method == "Inspector.targetCrashed" && session == page_session_) ||
      (method == "Target.targetCrashed" && params.value("targetId", "") == target_id_))
    return set_fatal("error", "the page's renderer crashed");
  if (method == "Target.detachedFromTarget" && params.value("sessionId", "") == page_session_)
    return set_fatal("error", "the browser closed the run's page");
}

void BrowserSession::record_blocked(const std::string& url, const std::string& method,
                                    const std::string& type, const std::string& initiator,
                                    const std::string& reason) {
  std::string task;
  {
    std::lock_guard lock(mu_);
    task = task_;
    ++blocked_;
    write_line(network_out_, {{"url", cut(url)},
                              {"method", method},
                              {"status", 0},
                              {"bytes", 0},
                              {"blocked", true},
                              {"resource_type", type},
                              {"initiator", initiator},
                              {"reason", reason},
                              {"timing_ms", 0}});
  }
  emit("BROWSER_REQUEST_BLOCKED", {{"task", task},
                                   {"url", cut(url)},
                                   {"initiator", initiator},
                                   {"resource_type", type},
                                   {"reason", reason}});
}

void BrowserSession::record_refused_websocket(const std::string& url) {
  std::string reason = policy_.refusal(url);
  if (reason.empty()) return;  // a page printing the marker for an allowed URL forges nothing
  record_blocked(url, "GET", "WebSocket", "worker", reason);
}

void BrowserSession::on_attached(const json& params) {
  std::string session = params.value("sessionId", "");
  const json info = params.value("targetInfo", json::object());
  // A worker of someone else's browser context (an attached browser shared with a person): let it be.
  if (!browser_context_.empty() && info.value("browserContextId", "") != browser_context_) {
    cdp_->send("Runtime.runIfWaitingForDebugger", json::object(), session);
    cdp_->send("Target.detachFromTarget", {{"sessionId", session}});
    return;
  }
  // Interception before the target runs a line (it waits for us), the same for every target.
  cdp_->send("Fetch.enable", {{"patterns", fetch_patterns()}}, session);
  cdp_->send("Network.enable", json::object(), session);
  cdp_->send("Runtime.enable", json::object(), session);
  // A worker started by a worker fetches its script past every Fetch session, so it carries no connect-src
  // policy: its WebSocket constructor is guarded in its own realm before its script runs.
  const std::string type = info.value("type", "");
  if (type == "worker" || type == "shared_worker" || type == "service_worker")
    cdp_->send("Runtime.evaluate", {{"expression", websocket_guard_}}, session);
  cdp_->send("Audits.enable", json::object(), session);
  cdp_->send("Target.setAutoAttach",
             {{"autoAttach", true}, {"waitForDebuggerOnStart", true}, {"flatten", true}}, session);
  cdp_->send("Runtime.runIfWaitingForDebugger", json::object(), session);
  if (info.value("type", "") == "page") {  // open() finds the run's own page here
    std::lock_guard lock(mu_);
    page_sessions_[info.value("targetId", "")] = session;
    cv_.notify_all();
  }
}

void BrowserSession::on_request_paused(const json& params, const std::string& session) {
  const std::string id = params.value("requestId", "");
  if (params.contains("responseStatusCode") || params.contains("responseErrorReason")) {
    // A document's or a script's response: WebSocket handshakes never pass Fetch interception, so every
    // document and worker gets a Content-Security-Policy whose connect-src names only the allowed origins.
    // Blink enforces it for WebSocket, fetch, XHR, EventSource and beacons alike, and a page can only add
    // to a policy, never lift it.
    if (params.contains("responseErrorReason")) {
      cdp_->send("Fetch.continueRequest", {{"requestId", id}}, session);
      return;
    }
    const int code = params.value("responseStatusCode", 0);
    if (code >= 300 && code < 400) {  // a redirect has no body; its next hop is judged at the request stage
      cdp_->send("Fetch.continueRequest", {{"requestId", id}}, session);
      return;
    }
    json headers = json::array();
    for (const auto& h : params.value("responseHeaders", json::array())) headers.push_back(h);
    headers.push_back({{"name", "Content-Security-Policy"}, {"value", connect_src_}});
    // Headers given to continueResponse do not reach a navigation's policy container, so the response is
    // fulfilled whole, with its own body. Fail closed: a body that cannot be read fails the request.
    cdp_->send(
        "Fetch.getResponseBody", {{"requestId", id}}, session,
        [this, id, session, code, headers](const json& r, const std::string& error) {
          if (!error.empty()) {
            cdp_->send("Fetch.failRequest", {{"requestId", id}, {"errorReason", "BlockedByClient"}}, session);
            return;
          }
          std::string body = r.value("body", "");
          if (!r.value("base64Encoded", false)) {
            std::string b64(boost::beast::detail::base64::encoded_size(body.size()), '\0');
            b64.resize(boost::beast::detail::base64::encode(b64.data(), body.data(), body.size()));
            body = std::move(b64);
          }
          cdp_->send(
              "Fetch.fulfillRequest",
              {{"requestId", id}, {"responseCode", code}, {"responseHeaders", headers}, {"body", body}},
              session);
        });
    return;
  }
  const json req = params.value("request", json::object());
  const std::string url = req.value("url", "");
  std::string reason = policy_.refusal(url);
  std::string initiator = "other";
  bool over = false;
  {
    std::lock_guard lock(mu_);
    over = ++requests_ > budgets_.max_requests;
    auto it = inflight_.find(params.value("networkId", ""));
    if (it != inflight_.end()) initiator = it->second.value("initiator", "other");
    if (over && reason.empty())
      reason = "browser budget exceeded: more than " + std::to_string(budgets_.max_requests) + " requests";
  }
  if (reason.empty()) {
    cdp_->send("Fetch.continueRequest", {{"requestId", id}}, session);
    return;
  }
  cdp_->send("Fetch.failRequest", {{"requestId", id}, {"errorReason", "BlockedByClient"}}, session);
  record_blocked(url, req.value("method", "GET"), params.value("resourceType", "Other"), initiator, reason);
  if (over) set_fatal("failed", reason);
}

void BrowserSession::on_network(const std::string& method, const json& params) {
  const std::string id = params.value("requestId", "");
  std::lock_guard lock(mu_);
  last_network_activity_ = Clock::now();
  if (method == "Network.requestWillBeSent") {
    const json req = params.value("request", json::object());
    // A redirect reuses the request id: the hop before it is finished here.
    auto prev = inflight_.find(id);
    if (prev != inflight_.end() && params.contains("redirectResponse")) {
      prev->second["status"] = params["redirectResponse"].value("status", 0);
      write_line(network_out_, prev->second);
    }
    inflight_[id] = {{"url", cut(req.value("url", ""))},
                     {"method", req.value("method", "GET")},
                     {"resource_type", params.value("type", "Other")},
                     {"initiator", initiator_of(params)},
                     {"blocked", false},
                     {"t0", params.value("timestamp", 0.0)}};
    return;
  }
  auto it = inflight_.find(id);
  if (it == inflight_.end()) return;
  json& r = it->second;
  if (method == "Network.responseReceived") {
    const json resp = params.value("response", json::object());
    r["status"] = resp.value("status", 0);
    if (params.value("type", "") == "Document" && params.value("frameId", "") == main_frame_)
      last_doc_status_ = resp.value("status", 0);
    return;
  }
  if (method != "Network.loadingFinished" && method != "Network.loadingFailed") return;
  double t0 = r.value("t0", 0.0);
  r.erase("t0");
  r["timing_ms"] = static_cast<int64_t>((params.value("timestamp", t0) - t0) * 1000);
  r["status"] = r.value("status", 0);
  if (method == "Network.loadingFinished") {
    r["bytes"] = static_cast<int64_t>(params.value("encodedDataLength", 0.0));
  } else {
    // A request the policy failed is already logged, with its reason, where it was judged.
    if (params.value("errorText", "").find("BLOCKED_BY_CLIENT") != std::string::npos ||
        params.value("blockedReason", "") == "csp") {
      inflight_.erase(it);
      return;
    }
    r["bytes"] = 0;
    r["error"] = params.value("errorText", "");
    r["blocked"] = params.contains("blockedReason");
  }
  write_line(network_out_, r);
  inflight_.erase(it);
}

void BrowserSession::on_console(const std::string& level, const std::string& text, const std::string& url,
                                int line) {
  json entry{{"level", level}, {"text", cut(text)}};
  if (!url.empty()) entry["url"] = cut(url);
  if (line > 0) entry["line"] = line;
  std::string task;
  {
    std::lock_guard lock(mu_);
    // A page can log without end: past these the lines are counted, not kept, and the summary says so.
    if (++task_console_lines_ <= kMaxConsoleLines)
      write_line(console_out_, entry);
    else if (task_console_lines_ == kMaxConsoleLines + 1)
      write_line(console_out_, {{"level", "warning"}, {"text", "further console lines not kept"}});
    if (level != "error") return;
    ++task_console_errors_;
    ++console_errors_total_;
    if (task_console_errors_ > kMaxConsoleErrorEvents) return;
    task = task_;
  }
  entry["task"] = task;
  entry.erase("level");
  emit("BROWSER_CONSOLE_ERROR", entry);
}

Navigation BrowserSession::navigate(const std::string& url, milliseconds timeout) {
  Navigation nav;
  std::string why = policy_.refusal(url);
  // A step may open only a page that comes from an allowed origin (and so carries the run's connect-src):
  // a data:, blob: or about: document of the contract's own would run with no such policy.
  if (why.empty() && !origin_of(url) && url.rfind("file:", 0) != 0)
    why = "the browser policy lets a step open only http(s) pages of allowed origins";
  if (!why.empty()) {
    record_blocked(url, "GET", "Document", "navigate", why);
    nav.url = url;
    nav.error = why;
    last_nav_ = nav;
    return nav;
  }
  uint64_t loads_before;
  {
    std::lock_guard lock(mu_);
    loads_before = loads_;
    last_doc_status_ = 0;
  }
  auto deadline = Clock::now() + timeout;
  json r = call("Page.navigate", {{"url", url}}, timeout);
  nav.error = r.value("errorText", "");
  if (nav.error.empty()) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return loads_ > loads_before || fatal_.has_value(); })) {
      lock.unlock();
      throw StepFailure("timeout",
                        "the page did not finish loading within " + std::to_string(timeout.count()) + " ms");
    }
  }
  if (auto f = fatal()) throw *f;
  {
    std::lock_guard lock(mu_);
    nav.status = last_doc_status_;
  }
  try {
    nav.url = evaluate("location.href", milliseconds(5000)).get<std::string>();
  } catch (const std::exception&) {
    nav.url = url;
  }
  emit("BROWSER_NAVIGATED",
       {{"task", task_}, {"url", cut(nav.url)}, {"status", nav.status}, {"ok", nav.error.empty()}});
  last_nav_ = nav;
  return nav;
}

json BrowserSession::evaluate(const std::string& expression, milliseconds timeout) {
  json r = call("Runtime.evaluate",
                {{"expression", expression},
                 {"returnByValue", true},
                 {"awaitPromise", true},
                 {"userGesture", true},
                 {"timeout", timeout.count()}},
                timeout + milliseconds(1000));
  if (r.contains("exceptionDetails")) {
    const json d = r["exceptionDetails"];
    std::string text =
        d.value("exception", json::object()).value("description", d.value("text", "exception"));
    throw StepFailure("failed", "the page threw: " + cut(text, 500));
  }
  const json result = r.value("result", json::object());
  return result.contains("value") ? result["value"] : json(nullptr);
}

std::string BrowserSession::screenshot_png(bool full_page, milliseconds timeout) {
  json params{{"format", "png"}};
  if (full_page) {
    json m = call("Page.getLayoutMetrics", json::object(), timeout);
    json size = m.value("cssContentSize", m.value("contentSize", json::object()));
    double w = std::max(1.0, std::min(size.value("width", 1280.0), 8192.0));
    double h = std::max(1.0, std::min(size.value("height", 800.0), 16384.0));
    params["clip"] = {{"x", 0}, {"y", 0}, {"width", w}, {"height", h}, {"scale", 1}};
    params["captureBeyondViewport"] = true;
  }
  json r = call("Page.captureScreenshot", params, timeout);
  std::string b64 = r.value("data", "");
  std::string png(boost::beast::detail::base64::decoded_size(b64.size()), '\0');
  auto used = boost::beast::detail::base64::decode(png.data(), b64.data(), b64.size());
  png.resize(used.first);
  return png;
}

void BrowserSession::click(const std::string& selector, milliseconds timeout) {
  json box = evaluate(
      "(() => { const e = document.querySelector(" + js_literal(selector) +
          "); if (!e) return null; e.scrollIntoView({block: 'center'}); "
          "const r = e.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()",
      timeout);
  if (!box.is_object()) throw StepFailure("failed", "no element matches " + cut(selector, 200));
  for (const char* type : {"mousePressed", "mouseReleased"})
    call("Input.dispatchMouseEvent",
         {{"type", type}, {"x", box["x"]}, {"y", box["y"]}, {"button", "left"}, {"clickCount", 1}}, timeout);
}

void BrowserSession::type(const std::string& selector, const std::string& text, milliseconds timeout) {
  json ok = evaluate("(() => { const e = document.querySelector(" + js_literal(selector) +
                         "); if (!e) return false; e.focus(); return true; })()",
                     timeout);
  if (ok != true) throw StepFailure("failed", "no element matches " + cut(selector, 200));
  call("Input.insertText", {{"text", text}}, timeout);
}

bool BrowserSession::wait_network_idle(milliseconds quiet, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (Clock::now() < deadline) {
    if (fatal_) break;
    if (inflight_.empty() && Clock::now() - last_network_activity_ >= quiet) return true;
    cv_.wait_for(lock, milliseconds(50));
  }
  return false;
}

}  // namespace cp::browser
