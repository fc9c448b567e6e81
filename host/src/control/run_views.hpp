// Read views of one run's bundle, shared by the API (serve/routes_run_detail.cpp) and `cp-host runs
// contract|reports|artifacts|diff`: the compiled contract, every report with the derived packs, a listing
// of artifacts/, and the recorded patch. A bundle holds what a run wrote (artifacts/scratch is the run's
// own folder), so nothing here follows a symlink, blocks on a FIFO or reads without a bound.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace cp::control {

// Why a view could not be made: the file is absent (or not a regular file), over its bound, or not JSON.
struct ViewResult {
  enum class Status { ok, missing, too_large, unreadable };
  Status status = Status::ok;
  std::string message;  // when not ok: which file and why
  nlohmann::json view;
};

// Bounds of the views (the artifact route's 64 MiB is the patch's too).
inline constexpr uint64_t kMaxContractBytes = uint64_t{16} << 20;
inline constexpr uint64_t kMaxReportBytes = uint64_t{16} << 20;
inline constexpr uint64_t kMaxReportsTotal = uint64_t{64} << 20;
inline constexpr uint64_t kMaxPatchViewBytes = uint64_t{64} << 20;
inline constexpr size_t kMaxArtifactEntries = 10000;
inline constexpr int kMaxArtifactDepth = 32;

// {"run_id", "kind", "contract_sha256" (the manifest's), "sha256" (of the file as parsed), "sha256_matches",
//  "contract"}: contract.json as the bundle holds it.
ViewResult contract_view(const std::filesystem::path& bundle);

// {"run_id", "reports": {name: report}, "packs": {proof_pack|incident_pack|approval_pack: pack},
//  "skipped": [{"name", "why"}]}: every reports/<name>.json parsed; one that is not a regular file, over
// 16 MiB, past 64 MiB in all, or not JSON is listed in `skipped` instead.
ViewResult reports_view(const std::filesystem::path& bundle);

// {"run_id", "artifacts": [{"path", "type", "size", "media_type"?}], "count", "total_bytes", "truncated"}:
// every entry under artifacts/ but folders, sorted by path. type: file | symlink | fifo | socket | device;
// a symlink is listed as one (its size is the link's, media_type absent) and never followed, nor is a
// folder reached through one. At most kMaxArtifactEntries entries and kMaxArtifactDepth levels.
ViewResult artifact_listing(const std::filesystem::path& bundle);

// The media type of a file by its name's extension (application/octet-stream when unknown).
std::string media_type_of(const std::string& name);

// artifacts/diff.patch as the run recorded it (no symlink followed, at most kMaxPatchViewBytes); `missing`
// for a run that recorded none (it changed nothing, or never got as far as collecting).
ViewResult read_patch(const std::filesystem::path& bundle, std::string& text);

}  // namespace cp::control
