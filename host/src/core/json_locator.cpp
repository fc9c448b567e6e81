#include "core/json_locator.hpp"

#include <vector>

namespace cp::core {
namespace {

class Scanner {
 public:
  Scanner(std::string_view text, std::vector<std::string> target) : s_(text), target_(std::move(target)) {}

  int run() {
    skip_ws();
    value(0);
    return best_line_;
  }

 private:
  // Called at the start of each value with its depth along the path; `matched` tells whether the path so
  // far equals the target's prefix of that length.
  void value(size_t depth) {
    skip_ws();
    if (depth <= target_.size() && matched_ == depth) best_line_ = line_;
    if (done_ || pos_ >= s_.size()) return;
    char c = s_[pos_];
    if (c == '{')
      object(depth);
    else if (c == '[')
      array(depth);
    else if (c == '"')
      string(nullptr);
    else
      scalar();
  }

  void object(size_t depth) {
    ++pos_;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return;
    }
    while (pos_ < s_.size() && !done_) {
      skip_ws();
      std::string key;
      string(&key);
      skip_ws();
      if (peek() == ':') ++pos_;
      bool hit = matched_ == depth && depth < target_.size() && target_[depth] == key;
      if (hit) matched_ = depth + 1;
      value(depth + 1);
      if (hit) {
        // The target lies inside this member; what follows cannot improve the answer.
        done_ = true;
        return;
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') ++pos_;
      return;
    }
  }

  void array(size_t depth) {
    ++pos_;
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return;
    }
    size_t index = 0;
    while (pos_ < s_.size() && !done_) {
      bool hit = matched_ == depth && depth < target_.size() && target_[depth] == std::to_string(index);
      if (hit) matched_ = depth + 1;
      value(depth + 1);
      if (hit) {
        done_ = true;
        return;
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        ++index;
        continue;
      }
      if (peek() == ']') ++pos_;
      return;
    }
  }

  void string(std::string* out) {
    if (peek() != '"') return;
    ++pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return;
      if (c == '\n') ++line_;
      if (c == '\\' && pos_ < s_.size()) {
        char e = s_[pos_++];
        if (out) {
          switch (e) {
            case 'n':
              *out += '\n';
              break;
            case 't':
              *out += '\t';
              break;
            case 'r':
              *out += '\r';
              break;
            case 'b':
              *out += '\b';
              break;
            case 'f':
              *out += '\f';
              break;
            case 'u':
              *out += "\\u";
              break;  // keys with \u escapes are rare; they simply will not match
            default:
              *out += e;
          }
        }
        continue;
      }
      if (out) *out += c;
    }
  }

  void scalar() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\t' || c == '\r') return;
      ++pos_;
    }
  }

  void skip_ws() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n')
        ++line_;
      else if (c != ' ' && c != '\t' && c != '\r')
        return;
      ++pos_;
    }
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  std::string_view s_;
  std::vector<std::string> target_;
  size_t pos_ = 0;
  int line_ = 1;
  int best_line_ = 1;
  size_t matched_ = 0;
  bool done_ = false;
};

std::vector<std::string> split_pointer(std::string_view p) {
  std::vector<std::string> out;
  if (p.empty()) return out;
  size_t i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string tok;
    for (size_t k = i; k < j; ++k) {
      if (p[k] == '~' && k + 1 < j) {
        tok += p[k + 1] == '1' ? '/' : '~';
        ++k;
      } else {
        tok += p[k];
      }
    }
    out.push_back(std::move(tok));
    i = j + 1;
  }
  return out;
}

}  // namespace

int line_of_pointer(std::string_view text, std::string_view pointer) {
  return Scanner(text, split_pointer(pointer)).run();
}

std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

}  // namespace cp::core
