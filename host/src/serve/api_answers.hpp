// The answers the API's route handlers share: JSON errors and bodies, redacted views of a run's files,
// strict query numbers, request bodies, and the mapping of control's outcomes to HTTP statuses.
#pragma once

#include "serve/api.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::contract {
struct Diagnostic;
}
namespace cp::control {
struct DecisionResult;
struct EvidenceResult;
}  // namespace cp::control

namespace cp::serve {

// {"error": {"code", "message", "details"?}} with `status`.
ApiResponse error(int status, const std::string& code, const std::string& message,
                  nlohmann::json details = nullptr);
ApiResponse ok_json(const nlohmann::json& j, int status = 200);

// An answer built from a run's files (manifests, reports, events), with every secret in its strings
// redacted and their number in X-CP-Redacted: what a run wrote is untrusted text.
ApiResponse ok_view(nlohmann::json j);

// Whether the caller asked for a run's evidence as written (`raw=1`), which only an admin gets; everyone
// else reads it redacted. Returns the refusal, or nullopt with `raw` set.
std::optional<ApiResponse> raw_wanted(const std::string& value, const Principal& who, bool& raw);

// A run's file as the caller may read it: raw for an admin's raw=1, else redacted (a binary file holding a
// secret is refused rather than corrupted).
ApiResponse evidence(std::string body, std::string content_type, bool raw, const std::string& what);

// A numeric query value (or header) read strictly: only decimal digits, no sign, no spaces, no trailing
// text, no overflow, within [lo, hi]. `limit=5abc` is refused, never read as 5. nullopt when invalid.
std::optional<unsigned long long> strict_uint(const std::string& v, unsigned long long lo,
                                              unsigned long long hi);
ApiResponse bad_number(const std::string& name, const std::string& value, const std::string& range);

// An optional JSON object body ({"reason": ...}); nullopt when present but not an object.
std::optional<nlohmann::json> object_body(const std::string& body);
std::string string_field(const nlohmann::json& b, const char* k);

// 422 with the same diagnostics `cp-host validate` prints; pointers under `prefix` when the contract came
// wrapped in {"contract": ...}. `body_file` is the name the submitted contract's diagnostics carry (a temp
// file's, for a preview).
ApiResponse invalid_contract(const std::string& message, const std::vector<contract::Diagnostic>& diagnostics,
                             const std::string& prefix, const std::string& body_file = "request body");

// The repository a submission names (`/repo` of `body`), which must be one this server was told it may run
// on (serve --repo / --allow-repo, or a folder under one); the server's default when the body names none.
// Returns the refusal (422 with the pointer and how to allow it), or nullopt with `repo` set.
std::optional<ApiResponse> read_repo(const ApiConfig& cfg, const nlohmann::json& body,
                                     std::filesystem::path& repo);

ApiResponse decision_response(const control::DecisionResult& r);
ApiResponse evidence_response(const control::EvidenceResult& r);

}  // namespace cp::serve
