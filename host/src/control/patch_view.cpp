#include "control/patch_view.hpp"

#include <optional>

namespace cp::control {

using nlohmann::json;

namespace {

bool starts(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// Reads a decimal number at `s[i]`, moving `i` past it; nullopt when there is none or it overflows.
std::optional<long long> number(std::string_view s, size_t& i) {
  size_t from = i;
  long long n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (n > 1'000'000'000'000LL) return std::nullopt;
    n = n * 10 + (s[i] - '0');
    ++i;
  }
  if (i == from) return std::nullopt;
  return n;
}

struct HunkHeader {
  long long old_start = 0, old_lines = 1, new_start = 0, new_lines = 1;
  std::string section;
};

// "@@ -12,3 +12,4 @@ int main()" (a count left out is 1).
std::optional<HunkHeader> hunk_header(std::string_view line) {
  if (!starts(line, "@@ -")) return std::nullopt;
  HunkHeader h;
  size_t i = 4;
  auto a = number(line, i);
  if (!a) return std::nullopt;
  h.old_start = *a;
  if (i < line.size() && line[i] == ',') {
    auto n = number(line, ++i);
    if (!n) return std::nullopt;
    h.old_lines = *n;
  }
  if (line.substr(i, 2) != " +") return std::nullopt;
  i += 2;
  auto b = number(line, i);
  if (!b) return std::nullopt;
  h.new_start = *b;
  if (i < line.size() && line[i] == ',') {
    auto n = number(line, ++i);
    if (!n) return std::nullopt;
    h.new_lines = *n;
  }
  if (line.substr(i, 3) != " @@") return std::nullopt;
  i += 3;
  if (i < line.size() && line[i] == ' ') ++i;
  h.section = std::string(line.substr(i));
  return h;
}

// "a/x" -> "x" (the prefixes git puts on both sides); /dev/null stays as it is.
std::string strip_prefix(std::string p) {
  if (p.size() > 2 && (starts(p, "a/") || starts(p, "b/"))) return p.substr(2);
  return p;
}

// The path of a "--- a/x" or "+++ b/x" line: quoted or bare, a trailing tab (git adds one after a name
// holding a space) dropped.
std::string header_path(std::string_view rest) {
  if (!rest.empty() && rest.back() == '\t') rest.remove_suffix(1);
  if (!rest.empty() && rest.front() == '"') return strip_prefix(unquote_git_path(rest));
  return strip_prefix(std::string(rest));
}

// The two paths of "diff --git a/x b/y": what the other headers do not name (a binary or mode-only change
// has no ---/+++ lines). Quoted names are read as such; bare ones are split where both halves are equal,
// as git itself reads them, else at the last " b/".
std::pair<std::string, std::string> git_line_paths(std::string_view rest) {
  std::string a, b;
  if (!rest.empty() && rest.front() == '"') {
    size_t end = 1;
    while (end < rest.size() && rest[end] != '"') end += rest[end] == '\\' ? 2 : 1;
    a = unquote_git_path(rest.substr(0, end + 1));
    std::string_view tail = end + 2 <= rest.size() ? rest.substr(end + 2) : std::string_view();
    b = !tail.empty() && tail.front() == '"' ? unquote_git_path(tail) : std::string(tail);
    return {strip_prefix(a), strip_prefix(b)};
  }
  if (rest.size() >= 5 && (rest.size() - 1) % 2 == 0) {
    size_t half = (rest.size() - 1) / 2;
    std::string_view l = rest.substr(0, half), r = rest.substr(half + 1);
    if (rest[half] == ' ' && l.size() > 2 && l.substr(2) == r.substr(2))
      return {strip_prefix(std::string(l)), strip_prefix(std::string(r))};
  }
  size_t cut = rest.rfind(" b/");
  if (cut == std::string_view::npos)
    return {strip_prefix(std::string(rest)), strip_prefix(std::string(rest))};
  return {strip_prefix(std::string(rest.substr(0, cut))), strip_prefix(std::string(rest.substr(cut + 1)))};
}

class PatchParser {
 public:
  PatchParser(std::string_view text, const PatchLimits& limits) : text_(text), lim_(limits) {}

  json run() {
    while (next_line()) {
      if (starts(line_, "diff --git ")) {
        begin_file(line_.substr(11));
      } else if (file_) {
        file_line();
      }
    }
    end_file();
    return {
        {"files", files_},
        {"totals", {{"files", total_files_}, {"added", added_}, {"removed", removed_}, {"binary", binary_}}},
        {"truncated", truncated_}};
  }

 private:
  bool next_line() {
    if (pos_ >= text_.size()) return false;
    size_t nl = text_.find('\n', pos_);
    if (nl == std::string_view::npos) nl = text_.size();
    line_ = text_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return true;
  }

  void begin_file(std::string_view rest) {
    end_file();
    auto [a, b] = git_line_paths(rest);
    cur_ = json{{"path", b},  {"status", "modified"}, {"binary", false},
                {"added", 0}, {"removed", 0},         {"hunks", json::array()}};
    old_path_ = a;
    file_ = true;
    in_hunk_ = false;
    hunk_ = nullptr;
    file_added_ = file_removed_ = 0;
    ++total_files_;
  }

  void end_file() {
    if (!file_) return;
    file_ = false;
    const std::string status = cur_["status"];
    if (status == "deleted") cur_["path"] = old_path_;
    if (status == "renamed" || status == "copied") cur_["old_path"] = old_path_;
    cur_["added"] = file_added_;
    cur_["removed"] = file_removed_;
    added_ += file_added_;
    removed_ += file_removed_;
    if (cur_["binary"].get<bool>()) ++binary_;
    if (files_.size() < lim_.max_files)
      files_.push_back(std::move(cur_));
    else
      truncated_ = true;
  }

  void file_line() {
    if (in_hunk_ && hunk_line()) return;
    in_hunk_ = false;
    if (auto h = hunk_header(line_)) {
      begin_hunk(*h);
    } else if (starts(line_, "new file mode ")) {
      cur_["status"] = "added";
      cur_["new_mode"] = std::string(line_.substr(14));
    } else if (starts(line_, "deleted file mode ")) {
      cur_["status"] = "deleted";
      cur_["old_mode"] = std::string(line_.substr(18));
    } else if (starts(line_, "old mode ")) {
      cur_["old_mode"] = std::string(line_.substr(9));
    } else if (starts(line_, "new mode ")) {
      cur_["new_mode"] = std::string(line_.substr(9));
    } else if (starts(line_, "rename from ") || starts(line_, "copy from ")) {
      bool rename = line_[0] == 'r';
      cur_["status"] = rename ? "renamed" : "copied";
      old_path_ = header_path(line_.substr(rename ? 12 : 10));
    } else if (starts(line_, "rename to ") || starts(line_, "copy to ")) {
      cur_["path"] = header_path(line_.substr(line_[0] == 'r' ? 10 : 8));
    } else if (starts(line_, "similarity index ")) {
      size_t i = 17;
      if (auto n = number(line_, i)) cur_["similarity"] = *n;
    } else if (starts(line_, "--- ")) {
      if (line_.substr(4) != "/dev/null") old_path_ = header_path(line_.substr(4));
    } else if (starts(line_, "+++ ")) {
      if (line_.substr(4) != "/dev/null") cur_["path"] = header_path(line_.substr(4));
    } else if (line_ == "GIT binary patch" || (starts(line_, "Binary files ") && line_.size() > 7 &&
                                               line_.substr(line_.size() - 7) == " differ")) {
      cur_["binary"] = true;
    }
    // Anything else (index lines, the base85 of a binary patch) says nothing the view shows.
  }

  void begin_hunk(const HunkHeader& h) {
    old_left_ = h.old_lines;
    new_left_ = h.new_lines;
    in_hunk_ = true;
    if (hunks_kept_ >= lim_.max_hunks) {
      hunk_ = nullptr;
      cur_["hunks_omitted"] = true;
      truncated_ = true;
      return;
    }
    ++hunks_kept_;
    cur_["hunks"].push_back({{"old_start", h.old_start},
                             {"old_lines", h.old_lines},
                             {"new_start", h.new_start},
                             {"new_lines", h.new_lines},
                             {"section", h.section},
                             {"lines", json::array()}});
    hunk_ = &cur_["hunks"].back();
  }

  // A line inside a hunk; false when the hunk ended before it (the line is then a header of what follows).
  bool hunk_line() {
    char m = line_.empty() ? ' ' : line_[0];  // a bare empty line is an empty context line
    bool counts_left = old_left_ > 0 || new_left_ > 0;
    if (m == '\\') {
      keep();
      return true;
    }
    if (!counts_left) return false;
    if (m == ' ') {
      --old_left_;
      --new_left_;
    } else if (m == '-') {
      --old_left_;
      ++file_removed_;
    } else if (m == '+') {
      --new_left_;
      ++file_added_;
    } else {
      return false;  // not a hunk line: the counts lied; the hunk ends here
    }
    keep();
    return true;
  }

  void keep() {
    if (!hunk_) return;
    if (lines_kept_ >= lim_.max_lines) {
      (*hunk_)["lines_omitted"] = true;
      truncated_ = true;
      return;
    }
    ++lines_kept_;
    (*hunk_)["lines"].push_back(std::string(line_));
  }

  std::string_view text_;
  PatchLimits lim_;
  size_t pos_ = 0;
  std::string_view line_;
  json files_ = json::array();
  json cur_;
  json* hunk_ = nullptr;
  std::string old_path_;
  bool file_ = false, in_hunk_ = false, truncated_ = false;
  long long old_left_ = 0, new_left_ = 0;
  long long file_added_ = 0, file_removed_ = 0;
  long long added_ = 0, removed_ = 0, binary_ = 0, total_files_ = 0;
  size_t hunks_kept_ = 0, lines_kept_ = 0;
};

}  // namespace

std::string unquote_git_path(std::string_view s) {
  if (s.size() < 2 || s.front() != '"') return std::string(s);
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) break;
    char e = s[i];
    switch (e) {
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 't':
        out += '\t';
        break;
      case 'n':
        out += '\n';
        break;
      case 'v':
        out += '\v';
        break;
      case 'f':
        out += '\f';
        break;
      case 'r':
        out += '\r';
        break;
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      default:
        if (e >= '0' && e <= '3' && i + 2 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7' &&
            s[i + 2] >= '0' && s[i + 2] <= '7') {
          out += static_cast<char>(((e - '0') << 6) | ((s[i + 1] - '0') << 3) | (s[i + 2] - '0'));
          i += 2;
        } else {
          out += e;
        }
    }
  }
  return {};  // no closing quote
}

json parse_patch(std::string_view patch, const PatchLimits& limits) {
  return PatchParser(patch, limits).run();
}

}  // namespace cp::control
