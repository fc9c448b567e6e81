// The intake store: one folder per intake session under <root>/.runtime-cache/cortexpilot/intake/<id>/,
// holding session.json (schemas/intake_session.schema.json) and events.jsonl, an append-only hash-chained
// log in the run events' line format (store/event_log.hpp) with run_id = the intake id.
//
// The log is the truth: every change appends one event whose payload carries the whole session as it is
// after the change (`payload.session`), then rewrites session.json atomically, a copy for people and tools.
// Reading always takes the last event's copy: session.json is never read back, so neither a crash between
// the two (the file one event behind) nor an edited file changes what the host believes. The CLI and `cp-host
// serve` may change one session at once: a change holds the session's flock (intake/<id>/.lock) from reading
// to writing.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cp::intake {

// "intake-<UTC stamp>-<6 hex>", inside the run id pattern (the log's run_id field).
std::string new_intake_id();
bool valid_intake_id(const std::string& id);

// What a change appends: its event type (INTAKE_*) and payload; the store adds payload.session.
struct IntakeEvent {
  std::string type;
  nlohmann::json payload = nlohmann::json::object();
};

class IntakeStore {
 public:
  explicit IntakeStore(std::filesystem::path root);

  // Makes the session's folder with its first event (INTAKE_CREATED). `session` must carry intake_id.
  // Throws std::runtime_error when the folder exists or cannot be written.
  nlohmann::json create(nlohmann::json session, IntakeEvent first);

  // Reads the session under its lock, lets `change` edit it and say which event records that, then appends
  // the event and writes session.json. `change` returning nullopt changes nothing (and writes nothing).
  // nullopt when there is no such session; throws std::runtime_error on a log that does not verify or on an
  // I/O error. Whatever `change` throws passes through, nothing written.
  std::optional<nlohmann::json> update(
      const std::string& id,
      const std::function<std::optional<IntakeEvent>(nlohmann::json& session)>& change);

  // The session, or nullopt (no such session, an invalid id, or nothing readable).
  std::optional<nlohmann::json> load(const std::string& id) const;
  // Every session, newest first.
  std::vector<nlohmann::json> list() const;
  // The session's events in order (bounded: the log of one session is small), or nullopt.
  std::optional<nlohmann::json> events(const std::string& id) const;

  std::filesystem::path dir_of(const std::string& id) const;

 private:
  std::filesystem::path root_;
};

}  // namespace cp::intake
