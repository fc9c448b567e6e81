// The catalogue's persistent index: the run table (run_table.hpp) saved as one binary file under the runtime
// root, so a serve over a million runs starts by reading one file instead of a million manifests. With it is
// saved the runs folder's stamp at the last listing: when the folder has not changed since, nothing is listed
// on start; when it has, only the runs added since are read. The bundles stay the truth: every indexed run's
// manifest stamp is checked again after start, and `cp-host reindex` rebuilds the file from the bundles.
//
// The file is written whole to a temporary name and renamed over the old one (store::write_atomic's
// discipline), so a crash leaves the old index or the new one. It is hostile input like anything under the
// root: a loader that finds a wrong size, an offset out of range, an unknown code, a duplicate or unsafe run
// id, or a checksum that does not match refuses the whole file, and the catalogue is built from the bundles.
#pragma once

#include "serve/run_table.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::serve {

struct IndexImage {
  RunTable table;
  std::string runs_stamp;  // the runs folder's stamp when it was last listed
  // The catalogue's two orders of the rows as saved (empty when none were); the loader checks only that
  // each names every row once: the catalogue checks they are in order before it trusts them.
  std::vector<uint32_t> order, by_last;
};

// Writes the live rows of `table`, renumbered in row order, and the orders given (row numbers of `table`,
// live rows only; may be empty). Throws std::system_error naming the file on a failed write.
void save_run_index(const std::filesystem::path& file, const RunTable& table, const std::string& runs_stamp,
                    const std::vector<uint32_t>& order = {}, const std::vector<uint32_t>& by_last = {});

// The saved index, or nullopt with `why` saying what was wrong (a missing file says "missing").
std::optional<IndexImage> load_run_index(const std::filesystem::path& file, std::string& why);

// The same from the file's bytes.
std::optional<IndexImage> parse_run_index(std::string_view data, std::string& why);
// `data` with its checksum set to match its body, for tests and fuzzing: so that altered bytes reach the
// checks behind the checksum. Shorter than a header: returned as it is.
std::string reseal_run_index(std::string data);

// The stamp of a manifest: its inode, size, and modification and change times, hashed. 0 when there is no
// regular file (no manifest, or a link): a row stamped 0 is read again at every check.
uint64_t manifest_stamp(const std::filesystem::path& manifest);

}  // namespace cp::serve
