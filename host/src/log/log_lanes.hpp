// Log lanes: JSON lines under <root>/.runtime-cache/logs/<lane>/<lane>.jsonl, one envelope per line
// (schemas/log_event.v2.schema.json). A lane file past its size limit is rotated and gzip-compressed
// (<lane>.<time>.jsonl.gz), keeping the newest max_files; errors written to any lane are copied to the
// `error` lane. spdlog and zlib stay inside log_lanes.cpp. Until open_lanes() is called, emit() only
// reaches the console (at its level), so commands without a root log nothing to disk.
#pragma once

#include "log/logger.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace cp::log {

enum class Lane { runtime, error, e2e, access, ci, governance };
const char* lane_name(Lane l);

struct Event {
  Level level = Level::info;
  Lane lane = Lane::runtime;
  std::string correlation_kind = "host";  // run, request, chain, retention, queue, host
  std::string correlation_id;
  std::string run_id;  // when the event is about a run
  std::string component;
  std::string message;
  nlohmann::json fields = nlohmann::json::object();
};

struct LaneOptions {
  size_t max_bytes = 16u << 20;  // rotate a lane file past this size
  size_t max_files = 10;         // compressed files kept per lane (oldest removed)
};

// Opens the lanes of `root` (idempotent; reopening with another root switches). Files and folders are made
// at a lane's first line, so a command that logs nothing writes nothing.
void open_lanes(const std::filesystem::path& root, LaneOptions o = {});
// Flushes and closes every lane.
void close_lanes();
bool lanes_open();

// Writes one event to its lane (and to `error` when level is error). Thread-safe; never throws.
void emit(const Event& e);
// Writes many events as emit() would, each lane's lines with one write: for a busy lane (access) whose
// lines are handed to a writer thread in batches.
void emit_all(const std::vector<Event>& events);
// Writes lines already in the envelope's form (each ending in '\n') to `lane` with one write; the
// caller formats them (a busy lane's writer does, without building an Event per line). Never throws.
void emit_lines(Lane lane, const std::string& lines);

// One governance-lane line about run `run_id` (a verdict, a decision, a chain's end): correlation "run",
// level warn when `warn`, else info. Never throws.
void governance(const std::string& run_id, const std::string& component, const std::string& message,
                const nlohmann::json& fields, bool warn = false);

// The envelope line for an event, as written (exposed for tests).
std::string envelope(const Event& e);

}  // namespace cp::log
