#include "run/worktree_scan.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace cp::run {

namespace fs = std::filesystem;

namespace {

// Length of the well-formed UTF-8 sequence at s[i], or 0 when it is not one.
size_t utf8_length(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
  if (more == 9 || (more == 1 && c < 0xc2) || i + more >= s.size()) return more == 0 ? 1 : 0;
  for (size_t k = 1; k <= more; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  return more + 1;
}

}  // namespace

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string as_utf8(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length(s, i);
    if (n > 0) {
      out.append(s, i, n);
      i += n;
    } else {
      static const char* hex = "0123456789abcdef";
      unsigned char c = static_cast<unsigned char>(s[i++]);
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

namespace {

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < 5; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > 5) out += " and " + std::to_string(items.size() - 5) + " more";
  return out;
}

}  // namespace

std::string WorktreeScan::denial() const {
  std::string why;
  auto add = [&why](const std::string& part) { why += (why.empty() ? "" : "; ") + part; };
  if (!nested_repos.empty())
    add("the run made a nested git repository (" + list(nested_repos) +
        "): its files would be a gitlink, absent from the patch that is judged and promoted");
  if (!special_files.empty())
    add("the run left special files (FIFO, socket or device) in its worktree, removed before collecting: " +
        list(special_files));
  if (!non_utf8_names.empty())
    add(std::to_string(non_utf8_names.size()) + " file name(s) in the worktree are not UTF-8");
  return why;
}

WorktreeScan scan_worktree(const fs::path& root) {
  WorktreeScan scan;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    fs::path rel = p.lexically_relative(root);
    std::string name = rel.string();
    if (it.depth() == 0 && p.filename() == ".git") {  // the worktree's own registration, checked elsewhere
      it.disable_recursion_pending();
      continue;
    }
    if (!valid_utf8(p.filename().string())) scan.non_utf8_names.push_back(name);
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (p.filename() == ".git") {
      scan.nested_repos.push_back(rel.parent_path().string());
      if (S_ISDIR(st.st_mode)) it.disable_recursion_pending();
      continue;
    }
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      scan.special_files.push_back(name);
      ::unlink(p.c_str());
    }
  }
  return scan;
}

}  // namespace cp::run
