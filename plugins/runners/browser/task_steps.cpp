#include "task_steps.hpp"

#include <fstream>
#include <thread>

namespace cp::browser {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr milliseconds kDefaultStepTimeout{10000};
constexpr milliseconds kDefaultNavigateTimeout{30000};

std::string shown(const json& v, size_t n = 2000) {
  std::string s =
      v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() <= n ? s : s.substr(0, n) + "…";
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// What page_brief reads off the page, in the page: title, meta description, headings, the main text and
// an excerpt of it around the focus words, and the link count.
std::string brief_script(const std::string& focus) {
  return "(() => {"
         " const text = (document.querySelector('main, article, [role=main]') || document.body || "
         "document.documentElement).innerText || '';"
         " const flat = text.replace(/\\s+/g, ' ').trim();"
         " const focus = " +
         js_literal(focus) +
         ".toLowerCase();"
         " let at = 0;"
         " if (focus) { const words = focus.split(/\\s+/).filter(w => w.length > 2);"
         "   for (const w of words) { const i = flat.toLowerCase().indexOf(w); if (i >= 0) { at = "
         "Math.max(0, i - 200); break; } } }"
         " const meta = document.querySelector('meta[name=description]');"
         " return { title: document.title || '', description: meta ? (meta.getAttribute('content') || '') : "
         "'',"
         "   headings: Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')).slice(0, 100)"
         "     .map(h => ({level: Number(h.tagName.substring(1)), text: (h.innerText || "
         "'').trim().substring(0, 300)})),"
         "   excerpt: flat.substring(at, at + 2000), link_count: document.querySelectorAll('a[href]').length "
         "};"
         "})()";
}

class StepRunner {
 public:
  StepRunner(BrowserSession& s, cp::Context ctx, std::string task, fs::path dir, Clock::time_point deadline)
      : s_(s), ctx_(ctx), task_(std::move(task)), dir_(std::move(dir)), deadline_(deadline) {}

  // Runs one step; throws StepFailure when it does not pass.
  void run(const json& step, int index) {
    const std::string action = step.value("action", "");
    const std::string name = step.value("name", action + " " + std::to_string(index));
    auto t0 = Clock::now();
    std::string status = "passed", detail;
    try {
      if (auto f = s_.fatal()) throw *f;
      do_step(step, action, name, index);
    } catch (const StepFailure& f) {
      status = "failed";
      detail = f.what();
      emit_step(index, action, name, status, t0, detail);
      throw StepFailure(f.kind,
                        "task " + task_ + ", step " + std::to_string(index) + " (" + name + "): " + f.what());
    }
    emit_step(index, action, name, status, t0, detail);
  }

  json extract = json::object();
  int screenshots = 0;

 private:
  milliseconds timeout_of(const json& step, milliseconds fallback) const {
    milliseconds t(step.value("timeout_ms", static_cast<int64_t>(fallback.count())));
    auto left = std::chrono::duration_cast<milliseconds>(deadline_ - Clock::now());
    if (left <= milliseconds(0)) throw StepFailure("timeout", "the browser budget's wall time is spent");
    return std::min(t, left);
  }

  void emit_step(int index, const std::string& action, const std::string& name, const std::string& status,
                 Clock::time_point t0, const std::string& detail) {
    json p{{"task", task_},
           {"index", index},
           {"action", action},
           {"name", name},
           {"status", status},
           {"duration_ms", std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count()}};
    if (!detail.empty()) p["detail"] = shown(detail);
    try {
      ctx_.emit("BROWSER_STEP", p.dump());
    } catch (const std::exception&) {
    }
  }

  void assertion(int index, const std::string& name, bool passed, const std::string& expected,
                 const std::string& seen) {
    try {
      ctx_.emit("BROWSER_ASSERTION", json{{"task", task_},
                                          {"index", index},
                                          {"name", name},
                                          {"passed", passed},
                                          {"expected", shown(expected, 500)},
                                          {"seen", shown(seen)}}
                                         .dump());
    } catch (const std::exception&) {
    }
    if (!passed)
      throw StepFailure("failed", "expected " + shown(expected, 500) + ", saw " + shown(seen, 500));
  }

  void do_step(const json& step, const std::string& action, const std::string& name, int index) {
    if (action == "navigate") {
      Navigation nav = s_.navigate(step.value("url", ""), timeout_of(step, kDefaultNavigateTimeout));
      if (!nav.error.empty()) {
        bool blocked = nav.error.find("BLOCKED_BY_CLIENT") != std::string::npos ||
                       nav.error.find("browser policy") != std::string::npos;
        throw StepFailure(blocked ? "denied" : "failed",
                          "navigation to " + shown(step.value("url", ""), 300) +
                              (blocked ? " was blocked: " : " failed: ") + nav.error);
      }
    } else if (action == "wait_for") {
      wait_for(step, timeout_of(step, kDefaultStepTimeout));
    } else if (action == "click") {
      s_.click(step.value("selector", ""), timeout_of(step, kDefaultStepTimeout));
    } else if (action == "type") {
      s_.type(step.value("selector", ""), step.value("text", ""), timeout_of(step, kDefaultStepTimeout));
    } else if (action == "evaluate") {
      keep(name, s_.evaluate(step.value("expression", ""), timeout_of(step, kDefaultStepTimeout)));
    } else if (action == "extract") {
      keep(step.value("key", name), do_extract(step, timeout_of(step, kDefaultStepTimeout)));
    } else if (action == "assert") {
      do_assert(step, name, index, timeout_of(step, kDefaultStepTimeout));
    } else if (action == "screenshot") {
      std::string file = step.value(
          "file", screenshots == 0 ? "screenshot.png" : "screenshot-" + std::to_string(screenshots) + ".png");
      write_file(dir_ / file,
                 s_.screenshot_png(step.value("full_page", true), timeout_of(step, kDefaultStepTimeout)));
      ++screenshots;
    } else {
      throw StepFailure("error", "unknown action " + shown(action, 100));
    }
  }

  // A page decides how large a value is: each is held to 4 MiB and extract.json to 16 MiB in all.
  void keep(const std::string& key, json value) {
    size_t size = value.dump(-1, ' ', false, json::error_handler_t::replace).size();
    if (size > (4u << 20))
      throw StepFailure("failed", "the value is " + std::to_string(size) + " bytes, over 4 MiB");
    kept_bytes_ += size;
    if (kept_bytes_ > (16u << 20)) throw StepFailure("failed", "extract.json would pass 16 MiB");
    extract[key] = std::move(value);
  }

  void wait_for(const json& step, milliseconds timeout) {
    auto until = Clock::now() + timeout;
    if (step.value("network_idle", false) && !s_.wait_network_idle(milliseconds(500), timeout))
      throw StepFailure("timeout",
                        "the network did not go idle within " + std::to_string(timeout.count()) + " ms");
    std::string cond;
    if (step.contains("selector"))
      cond = "document.querySelector(" + js_literal(step["selector"]) + ") !== null";
    if (step.contains("text"))
      cond += std::string(cond.empty() ? "" : " && ") +
              "(document.body && document.body.innerText.includes(" + js_literal(step["text"]) + "))";
    if (cond.empty()) return;
    while (true) {
      if (s_.evaluate(cond, milliseconds(5000)) == true) return;
      if (Clock::now() >= until)
        throw StepFailure("timeout",
                          "waited " + std::to_string(timeout.count()) + " ms for " +
                              (step.contains("selector") ? "selector " + shown(step["selector"], 200) : "") +
                              (step.contains("text") ? " text " + shown(step["text"], 200) : ""));
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  json do_extract(const json& step, milliseconds timeout) {
    std::string what = step.value("what", "text");
    std::string read = what == "html" ? "e.outerHTML"
                       : what == "attribute"
                           ? "e.getAttribute(" + js_literal(step.value("attribute", "")) + ")"
                           : "(e.innerText !== undefined ? e.innerText : e.textContent)";
    std::string sel = js_literal(step.value("selector", ""));
    json v = s_.evaluate(
        step.value("all", false)
            ? "Array.from(document.querySelectorAll(" + sel + ")).map(e => " + read + ")"
            : "(() => { const e = document.querySelector(" + sel + "); return e ? " + read + " : null; })()",
        timeout);
    if (v.is_null())
      throw StepFailure("failed", "no element matches " + shown(step.value("selector", ""), 200));
    return v;
  }

  void do_assert(const json& step, const std::string& name, int index, milliseconds timeout) {
    if (step.contains("selector_exists")) {
      bool found = s_.evaluate("document.querySelector(" + js_literal(step["selector_exists"]) + ") !== null",
                               timeout) == true;
      assertion(index, name, found, "an element matching " + shown(step["selector_exists"]),
                found ? "one" : "none");
    }
    if (step.contains("text_contains")) {
      json body = s_.evaluate("document.body ? document.body.innerText : ''", timeout);
      std::string text = body.is_string() ? body.get<std::string>() : "";
      bool ok = text.find(step["text_contains"].get<std::string>()) != std::string::npos;
      assertion(index, name, ok, "page text containing " + shown(step["text_contains"]), text);
    }
    if (step.contains("title_matches")) {
      json r = s_.evaluate("(() => ({ok: new RegExp(" + js_literal(step["title_matches"]) +
                               ").test(document.title), title: document.title}))()",
                           timeout);
      assertion(index, name, r.value("ok", false), "title matching /" + shown(step["title_matches"]) + "/",
                r.value("title", ""));
    }
    if (step.contains("url_matches")) {
      json r = s_.evaluate("(() => ({ok: new RegExp(" + js_literal(step["url_matches"]) +
                               ").test(location.href), url: location.href}))()",
                           timeout);
      assertion(index, name, r.value("ok", false), "URL matching /" + shown(step["url_matches"]) + "/",
                r.value("url", ""));
    }
    if (step.contains("http_status")) {
      int want = step["http_status"].get<int>();
      int seen = s_.last_navigation().status;
      assertion(index, name, seen == want, "HTTP status " + std::to_string(want),
                "HTTP status " + std::to_string(seen));
    }
    if (step.contains("no_console_errors")) {
      int n = s_.console_errors();
      assertion(index, name, n == 0, "no console errors",
                std::to_string(n) + " console error(s), see console.jsonl");
    }
  }

  BrowserSession& s_;
  cp::Context ctx_;
  std::string task_;
  fs::path dir_;
  Clock::time_point deadline_;
  size_t kept_bytes_ = 0;
};

}  // namespace

TaskOutcome run_task(BrowserSession& session, cp::Context ctx, const json& task, const fs::path& dir,
                     Clock::time_point deadline) {
  const std::string id = task.value("id", "task");
  if (task.contains("timeout_ms"))
    deadline = std::min(deadline, Clock::now() + milliseconds(task["timeout_ms"].get<int64_t>()));
  TaskOutcome out;
  session.begin_task(id, dir);
  StepRunner steps(session, ctx, id, dir, deadline);
  int index = 0;
  int passed = 0;
  try {
    if (task.contains("url")) {
      steps.run({{"action", "navigate"}, {"url", task["url"]}, {"name", "open"}}, index++);
      ++passed;
    }
    // Until a task has opened a page of an allowed origin, the page is the browser's blank one, which
    // carries no connect-src policy: nothing may run in it.
    const json script = task.value("script", json::array());
    if (session.last_navigation().url.empty() && !task.contains("url") &&
        (script.empty() || script[0].value("action", "") != "navigate"))
      throw StepFailure("denied",
                        "task " + id + ": open a page first (the task's url or a first navigate step)");
    for (const auto& step : script) {
      steps.run(step, index++);
      ++passed;
    }
    if (task.value("task_template", "") == "page_brief") {
      if (steps.screenshots == 0)
        steps.run({{"action", "screenshot"}, {"name", "brief screenshot"}}, index++);
      steps.run({{"action", "evaluate"},
                 {"expression", brief_script(task.value("focus", ""))},
                 {"name", "page_brief"}},
                index++);
      json b = steps.extract["page_brief"];
      steps.extract.erase("page_brief");
      json brief{{"schema_version", "page_brief.v1"},
                 {"task", id},
                 {"url", session.last_navigation().url},
                 {"title", b.value("title", "")},
                 {"description", b.value("description", "")},
                 {"headings", b.value("headings", json::array())},
                 {"excerpt", b.value("excerpt", "")},
                 {"link_count", b.value("link_count", 0)},
                 {"screenshot", "screenshot.png"},
                 {"http_status", session.last_navigation().status}};
      if (task.contains("focus")) brief["focus"] = task["focus"];
      write_file(dir / "brief.json", brief.dump(2) + "\n");
    }
  } catch (const StepFailure& f) {
    out.status = f.kind;
    out.reason = f.what();
  }
  // The page as it stands, whatever happened: the evidence a reader of a failure needs first.
  try {
    if (!session.fatal()) {
      json html = session.evaluate(
          "document.documentElement ? document.documentElement.outerHTML.slice(0, 16777216) : ''",
          milliseconds(5000));
      if (html.is_string()) write_file(dir / "dom.html", html.get<std::string>());
    }
  } catch (const std::exception&) {
  }
  write_file(dir / "extract.json", steps.extract.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  session.end_task();
  out.report = {{"id", id},
                {"status", out.status},
                {"steps_passed", passed},
                {"url", session.last_navigation().url},
                {"http_status", session.last_navigation().status},
                {"evidence", "artifacts/browser/" + id + "/"}};
  if (!out.reason.empty()) out.report["reason"] = out.reason;
  return out;
}

}  // namespace cp::browser
