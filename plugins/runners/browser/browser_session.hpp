// One browser run's view of the browser: the page it drives, the URL policy it enforces on every request
// of that page (its frames, workers and service workers included) through CDP Fetch interception, and
// the evidence it records per task (console.jsonl, network.jsonl) and as events.
//
// The CDP I/O thread runs the event half (interception, logs); the run thread calls the step half
// (navigate, evaluate, screenshot), which blocks on answers.
#pragma once

#include "cdp_client.hpp"
#include "url_policy.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace cp::browser {

// `s` as a JavaScript string literal (JSON string syntax is valid JavaScript), for scripts sent to a page.
std::string js_literal(const std::string& s);

struct Budgets {
  int max_pages = 50;
  int max_requests = 5000;
};

// A step could not be done; `kind` is the run status it leads to (failed, timeout, error, denied).
struct StepFailure : std::runtime_error {
  StepFailure(std::string kind, const std::string& what) : std::runtime_error(what), kind(std::move(kind)) {}
  std::string kind;
};

struct Navigation {
  std::string url;    // where the page ended up
  int status = 0;     // HTTP status of the main document, 0 when none arrived
  std::string error;  // the browser's net error, empty on success
};

class BrowserSession {
 public:
  BrowserSession(cp::Context ctx, UrlPolicy policy, Budgets budgets);
  ~BrowserSession();

  // Connects to the browser and opens the run's page. `own_context`: in a new browser context (an attached
  // browser that is not the run's own), disposed at close().
  void open(const std::string& ws_url, bool own_context, std::chrono::milliseconds timeout);
  // Closes the page (and the context the run made). Browser.close when `close_browser`.
  void close(bool close_browser);

  // Evidence of one task goes to `dir` from here on; events name `task`.
  void begin_task(const std::string& task, const std::filesystem::path& dir);
  void end_task();

  Navigation navigate(const std::string& url, std::chrono::milliseconds timeout);
  // Runtime.evaluate in the page, awaited, by value. Throws StepFailure on an exception in the page.
  nlohmann::json evaluate(const std::string& expression, std::chrono::milliseconds timeout);
  std::string screenshot_png(bool full_page, std::chrono::milliseconds timeout);
  void click(const std::string& selector, std::chrono::milliseconds timeout);
  void type(const std::string& selector, const std::string& text, std::chrono::milliseconds timeout);
  // Waits until no request has been in flight for `quiet`.
  bool wait_network_idle(std::chrono::milliseconds quiet, std::chrono::milliseconds timeout);

  int console_errors() const;  // in the current task
  const Navigation& last_navigation() const { return last_nav_; }
  // Set when the session cannot go on (budget spent, browser gone, page crashed): why, and the run status.
  std::optional<StepFailure> fatal() const;
  nlohmann::json summary() const;  // counts for the runner result
  uint64_t cdp_messages() const { return cdp_ ? cdp_->messages_received() : 0; }
  bool connected() const { return cdp_ && cdp_->open(); }

 private:
  void on_event(const std::string& method, const nlohmann::json& params, const std::string& session);
  void on_attached(const nlohmann::json& params);
  void on_request_paused(const nlohmann::json& params, const std::string& session);
  void on_network(const std::string& method, const nlohmann::json& params);
  // A request the policy refused: counted, a network.jsonl line, a BROWSER_REQUEST_BLOCKED event.
  void record_blocked(const std::string& url, const std::string& method, const std::string& type,
                      const std::string& initiator, const std::string& reason);
  void record_refused_websocket(const std::string& url);
  void on_console(const std::string& level, const std::string& text, const std::string& url, int line);
  void set_fatal(const std::string& kind, const std::string& why);
  void emit(const std::string& type, const nlohmann::json& payload);
  void write_line(std::ofstream& out, const nlohmann::json& line);
  nlohmann::json call(const std::string& method, const nlohmann::json& params,
                      std::chrono::milliseconds timeout);

  cp::Context ctx_;
  UrlPolicy policy_;
  Budgets budgets_;
  std::unique_ptr<CdpClient> cdp_;
  std::string page_session_;
  std::string target_id_;
  std::string browser_context_;  // made by the run (attach), disposed at close
  std::string main_frame_;
  std::string connect_src_;                           // the CSP every document and worker script gets
  std::map<std::string, std::string> page_sessions_;  // target id -> session of every page attached
  std::string websocket_guard_;  // run in every worker before its script: refuses disallowed WebSockets

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string task_;
  std::ofstream console_out_, network_out_;
  int task_console_errors_ = 0;
  int task_console_lines_ = 0;
  uint64_t loads_ = 0;  // Page.loadEventFired count
  int pages_ = 0, requests_ = 0, blocked_ = 0, console_errors_total_ = 0;
  std::map<std::string, nlohmann::json> inflight_;  // Network requestId -> what we know of it
  std::chrono::steady_clock::time_point last_network_activity_ = std::chrono::steady_clock::now();
  int last_doc_status_ = 0;
  std::optional<StepFailure> fatal_;
  Navigation last_nav_;
};

}  // namespace cp::browser
