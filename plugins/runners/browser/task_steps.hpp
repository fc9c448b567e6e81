// One browser task: open its URL, run its script of steps, apply its template, keep its evidence
// (screenshot.png, dom.html, extract.json, brief.json beside the session's console.jsonl and
// network.jsonl). The first step that does not pass ends the task; the outcome names it and what was seen.
#pragma once

#include "browser_session.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <string>

namespace cp::browser {

struct TaskOutcome {
  std::string status = "completed";  // completed, failed, timeout, error, denied
  std::string reason;
  nlohmann::json report;  // what the runner result lists for the task
};

// `deadline`: when the whole run's browser budget ends.
TaskOutcome run_task(BrowserSession& session, cp::Context ctx, const nlohmann::json& task,
                     const std::filesystem::path& dir, std::chrono::steady_clock::time_point deadline);

}  // namespace cp::browser
