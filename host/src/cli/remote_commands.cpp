#include "cli/remote_commands.hpp"

#include "cli/colour.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_client.hpp"
#include "run/engine.hpp"

#include <chrono>
#include <iostream>
#include <thread>

namespace cp::cli {

using nlohmann::json;

namespace {

// The server to talk to, or null after saying why it cannot be used.
std::optional<RemoteServer> server_of(const Globals& g) {
  std::string why;
  auto s = parse_server_url(g.server, why);
  if (!s) {
    std::cerr << "cp-host: --server " << why << "\n";
    return std::nullopt;
  }
  s->token = g.token;
  return s;
}

// The exit code and message for an answer that is not a success: 401/403 a token problem (2, the command
// line's), 404 not found and 409/422 refusals (1), anything else the server's failure (3).
int failed(const HttpAnswer& a, const std::string& what) {
  std::cerr << "cp-host: " << what << ": " << a.message() << "\n";
  if (a.status == 0) return kInternal;
  if (a.status == 401 || a.status == 403) {
    std::cerr << "cp-host: give a token with CP_HOST_TOKEN or --token-file FILE (`cp-host tokens add` makes "
                 "one on the server)\n";
    return kUsage;
  }
  if (a.status == 400) return kUsage;
  if (a.status == 404 || a.status == 409 || a.status == 422) return kInvalid;
  return kInternal;
}

std::optional<json> get_json(const RemoteServer& s, const std::string& target, int& code,
                             const std::string& what) {
  HttpAnswer a = http_call(s, "GET", target);
  if (a.status != 200) {
    code = failed(a, what);
    return std::nullopt;
  }
  json j = a.json();
  if (j.is_discarded()) {
    std::cerr << "cp-host: " << what << ": the server's answer is not JSON\n";
    code = kInternal;
    return std::nullopt;
  }
  return j;
}

std::string run_path(const std::string& run_id) {
  return "/api/runs/" + url_encode(run_id);
}

}  // namespace

std::string remote_run_path(const std::string& run_id) {
  return run_path(run_id);
}

std::optional<json> remote_get(const Globals& g, const std::string& target, const std::string& what,
                               bool for_text, int& code) {
  auto s = server_of(g);
  if (!s) {
    code = kUsage;
    return std::nullopt;
  }
  auto view = get_json(*s, target, code, what + " on " + s->url);
  if (view && for_text) *view = terminal_safe_json(std::move(*view));
  return view;
}

int remote_view(const Globals& g, const std::string& target, const std::string& what, bool as_json,
                const std::function<void(const json&)>& human) {
  int code = kOk;
  auto view = remote_get(g, target, what, !as_json, code);
  if (!view) return code;
  if (as_json)
    std::cout << view->dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  else
    human(*view);
  return kOk;
}

int remote_text(const Globals& g, const std::string& target, const std::string& what) {
  auto s = server_of(g);
  if (!s) return kUsage;
  HttpAnswer a = http_call(*s, "GET", target);
  if (a.status != 200) return failed(a, what + " on " + s->url);
  print_patch(a.body);
  return kOk;
}

int remote_runs_verify(const Globals& g, const std::string& run_id, bool as_json,
                       const std::function<void(const json&)>& human) {
  auto s = server_of(g);
  if (!s) return kUsage;
  const std::string what = "verifying run " + run_id + " on " + s->url;
  HttpAnswer a = http_call(*s, "POST", run_path(run_id) + "/verify", "{}");
  json check;
  if (a.status == 403) {
    // A viewer may not make the server read every file again; the detail carries the server's check of
    // the bundle as it is now.
    int code = kOk;
    auto d = get_json(*s, run_path(run_id), code, what);
    if (!d) return code;
    check = d->contains("verification") ? (*d)["verification"] : json();
    if (check.is_object() && !check.contains("run_id")) check["run_id"] = run_id;
  } else if (a.status == 200) {
    check = a.json();
  } else {
    return failed(a, what);
  }
  if (!check.is_object()) {
    std::cerr << "cp-host: " << what << ": the server's answer is not a verification\n";
    return kInternal;
  }
  if (as_json)
    std::cout << check.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  else
    human(terminal_safe_json(check));
  return flag_of(check, "ok", false) ? kOk : kInvalid;
}

const std::vector<std::string>& remote_capable_commands() {
  static const std::vector<std::string> words{
      "runs list",      "runs show",      "runs events",    "runs follow",    "runs verify",
      "runs contract",  "runs reports",   "runs artifacts", "runs diff",      "queue list",
      "queue submit",   "queue cancel",   "queue watch",    "approvals list", "approve",
      "reject",         "agents list",    "agents status",  "tower overview", "tower alerts",
      "tower sessions", "workflows list", "workflows show", "intake list",    "intake show",
      "locks list",     "worktrees list"};
  return words;
}

int remote_runs_list(const Globals& g, const store::RunQuery& q, size_t limit, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  std::string query;
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) query += std::string(query.empty() ? "?" : "&") + k + "=" + url_encode(v);
  };
  add("status", q.status);
  add("verdict", q.verdict);
  add("runner", q.runner);
  add("pack", q.pack);
  add("workflow", q.workflow);
  add("since", q.since);
  add("q", q.text);
  add("kind", q.kind);
  // Pages of at most 1000 (the API's page) until `limit` rows are in.
  json rows = json::array();
  std::string cursor;
  int code = kOk;
  while (rows.size() < limit) {
    std::string target = "/api/runs" + query + (query.empty() ? "?" : "&") +
                         "limit=" + std::to_string(std::min<size_t>(1000, limit - rows.size()));
    if (!cursor.empty()) target += "&cursor=" + url_encode(cursor);
    auto page = get_json(*s, target, code, "listing runs on " + s->url);
    if (!page) return code;
    const size_t before = rows.size();
    if (page->contains("runs") && (*page)["runs"].is_array())
      for (auto& r : (*page)["runs"]) rows.push_back(std::move(r));
    const std::string next = text_of(*page, "next_cursor");
    // A page that adds nothing, or a cursor that does not move, would page for ever: the listing ends.
    if (next.empty() || next == cursor || rows.size() == before) break;
    cursor = next;
  }
  if (rows.size() > limit) rows.erase(rows.begin() + static_cast<long>(limit), rows.end());
  if (as_json) {
    std::cout << json{{"runs", rows}, {"count", rows.size()}}.dump(2) << "\n";
    return kOk;
  }
  print_runs_table(rows, "on " + s->url);
  return kOk;
}

int remote_runs_show(const Globals& g, const std::string& run_id, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  int code = kOk;
  auto d = get_json(*s, run_path(run_id), code, "run " + run_id);
  if (!d) return code;
  const json manifest = d->contains("manifest") ? (*d)["manifest"] : json::object();
  const json verification = d->contains("verification") ? (*d)["verification"] : json::object();
  const bool tampered = text_of(verification, "state") == "tampered";
  if (as_json) {
    std::cout << manifest.dump(2) << "\n";
    if (tampered) std::cerr << "cp-host: run " << run_id << " does not verify on " << s->url << "\n";
  } else {
    print_run_detail(run_id, manifest, s->url + run_path(run_id), verification);
  }
  return tampered ? kInvalid : kOk;
}

namespace {

// Every event after `after` (paged), each printed; the last sequence number seen, and the run's status.
struct EventsPage {
  bool ok = false;
  unsigned long long last = 0;
  std::string run_status;
};

EventsPage print_events_after(const RemoteServer& s, const std::string& run_id, unsigned long long after,
                              const std::string& type, bool as_json, int& code) {
  EventsPage p;
  p.last = after;
  for (;;) {
    const unsigned long long before = p.last;
    auto page = get_json(s, run_path(run_id) + "/events?limit=5000&after_seq=" + std::to_string(p.last), code,
                         "events of run " + run_id);
    if (!page) return p;
    if (page->contains("events") && (*page)["events"].is_array())
      for (const auto& e : (*page)["events"]) {
        if (!e.is_object()) continue;
        if (e.contains("seq") && e["seq"].is_number_unsigned())
          p.last = std::max(p.last, e["seq"].get<unsigned long long>());
        if (!type.empty() && text_of(e, "type") != type) continue;
        print_event(e.dump(-1, ' ', false, json::error_handler_t::replace), as_json, run_id);
      }
    p.run_status = text_of(*page, "run_status");
    // More is said to come only after the last event read: a page that does not move on ends the reading.
    if (!flag_of(*page, "more", false) || p.last == before) break;
  }
  p.ok = true;
  return p;
}

}  // namespace

int remote_runs_events(const Globals& g, const std::string& run_id, const std::string& type, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  int code = kOk;
  return print_events_after(*s, run_id, 0, type, as_json, code).ok ? kOk : code;
}

int remote_runs_follow(const Globals& g, const std::string& run_id, bool as_json, int interval_ms) {
  auto s = server_of(g);
  if (!s) return kUsage;
  unsigned long long last = 0;
  int unheld = 0;
  for (;;) {
    int code = kOk;
    // The status first, then the events: once it says the run ended, the events read after hold the last.
    auto d = get_json(*s, run_path(run_id), code, "run " + run_id);
    if (!d) return code;
    const json m = d->contains("manifest") ? (*d)["manifest"] : json::object();
    const std::string status = text_of(m, "status");
    EventsPage p = print_events_after(*s, run_id, last, "", as_json, code);
    if (!p.ok) return code;
    last = p.last;
    const json v = d->contains("verification") ? (*d)["verification"] : json::object();
    const std::string checked = text_of(v, "state");
    // A sealed run's verdict counts only when the server found the bundle as its seal signed it; while the
    // server still sees it live (the seal being written), look again.
    const bool settling = status == "sealed" && checked == "live";
    if ((status == "sealed" && !settling) || status == "awaiting_approval") {
      if (status == "sealed" && v.is_object() && !flag_of(v, "ok", checked.empty())) {
        for (const auto& p : array_of(v, "problems"))
          std::cerr << "TAMPERED: " << terminal_safe(run_id) << ": "
                    << terminal_safe(p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
        std::cerr << "cp-host: run " << terminal_safe(run_id)
                  << " is sealed but its bundle does not verify on " << s->url << " (exit 1)\n";
        return kInvalid;
      }
      const std::string verdict = text_of(m, "verdict");
      const int exit = status == "awaiting_approval" ? 9 : run::exit_code_for_verdict(verdict);
      std::cerr << "cp-host: run " << terminal_safe(run_id) << " "
                << (status == "sealed" ? "sealed " + paint_verdict(verdict, 2)
                                       : paint("is awaiting approval", Colour::yellow, 2))
                << " (exit " << exit << ")\n";
      return exit;
    }
    // Not ended, and the server sees no live process holding it: it died without a seal.
    unheld = !settling && checked == "tampered" ? unheld + 1 : 0;
    if (unheld >= 3) {
      std::cerr << "cp-host: run " << terminal_safe(run_id) << " is " << status
                << " and no process holds it: it ended without a seal (`cp-host runs recover` on the server "
                   "seals it error)\n";
      return run::exit_code_for_verdict("error");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

std::optional<json> remote_queue_snapshot(const Globals& g, int& code) {
  auto s = server_of(g);
  if (!s) {
    code = kUsage;
    return std::nullopt;
  }
  return get_json(*s, "/api/queue", code, "the queue on " + s->url);
}

int remote_queue_list(const Globals& g, const std::string& state, bool active_only, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  int code = kOk;
  auto list = get_json(*s, "/api/queue" + (state.empty() ? "" : "?state=" + url_encode(state)), code,
                       "the queue on " + s->url);
  if (!list) return code;
  // --active hides ended items, as the local list does; the API lists them all.
  if (active_only && list->contains("items") && (*list)["items"].is_array()) {
    json kept = json::array();
    for (auto& it : (*list)["items"]) {
      const std::string st = text_of(it, "state");
      if (st != "done" && st != "cancelled") kept.push_back(std::move(it));
    }
    (*list)["items"] = kept;
  }
  if (as_json)
    std::cout << list->dump(2) << "\n";
  else
    print_queue_items(*list);
  return kOk;
}

int remote_queue_cancel(const Globals& g, const std::string& item, const std::string& reason) {
  auto s = server_of(g);
  if (!s) return kUsage;
  HttpAnswer a =
      http_call(*s, "POST", "/api/queue/" + url_encode(item) + "/cancel", json{{"reason", reason}}.dump());
  if (a.status != 202 && a.status != 200) return failed(a, "cancelling " + item);
  const json j = a.json();
  if (text_of(j, "outcome") == "cancelled")
    std::cout << "cancelled " << item << "\n";
  else
    std::cout << "cancel requested for " << item << " (running; serve stops it)\n";
  return kOk;
}

int remote_queue_submit(const Globals& g, const json& body, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  HttpAnswer a = http_call(*s, "POST", "/api/runs", body.dump());
  if (a.status != 202 && a.status != 200 && a.status != 201) {
    // A contract the server found wrong: its diagnostics, as the local check prints them.
    const json j = a.json();
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("details") &&
        j["error"]["details"].is_array())
      for (const auto& d : j["error"]["details"])
        if (d.is_object())
          std::cerr << text_of(d, "pointer") << ": " << text_of(d, "message", d.dump()) << "\n";
    return failed(a, "queue submit; nothing was queued");
  }
  json item = a.json();
  if (item.is_object() && item.contains("item") && item["item"].is_object()) item = item["item"];
  if (as_json)
    std::cout << item.dump(2) << "\n";
  else
    std::cout << "queued " << text_of(item, "item_id") << " (task " << text_of(item, "task_id")
              << ", priority " << number_of(item, "priority", "5") << ")\n";
  return kOk;
}

int remote_approvals_list(const Globals& g, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  int code = kOk;
  auto j = get_json(*s, "/api/approvals", code, "approvals on " + s->url);
  if (!j) return code;
  const json pending = j->contains("approvals") ? (*j)["approvals"] : json::array();
  if (as_json)
    std::cout << json{{"approvals", pending}, {"count", pending.size()}}.dump(2) << "\n";
  else
    print_approvals(pending);
  return kOk;
}

int remote_decide(const Globals& g, const std::string& run_id, const std::string& action,
                  const std::string& reason, bool as_json) {
  auto s = server_of(g);
  if (!s) return kUsage;
  json body = json::object();
  if (!reason.empty()) body["reason"] = reason;
  HttpAnswer a = http_call(*s, "POST", run_path(run_id) + "/" + action, body.dump());
  const json j = a.json();
  const std::string cmd = action == "reject" ? "cp-host reject" : "cp-host approve";
  if (a.status != 200) {
    const std::string outcome = j.is_object() && j.contains("error") && j["error"].is_object()
                                    ? text_of(j["error"], "code", "error")
                                    : "error";
    const int code = a.status == 403 && outcome == "from_run" ? kFromRun : failed(a, cmd);
    if (as_json)
      std::cout << json{{"outcome", outcome}, {"message", a.message()}, {"exit_code", code}}.dump(2) << "\n";
    return code;
  }
  if (as_json) {
    json out = j;
    out.erase("run_id");
    out["exit_code"] = kOk;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << text_of(j, "message") << "\n";
  }
  return kOk;
}

}  // namespace cp::cli
