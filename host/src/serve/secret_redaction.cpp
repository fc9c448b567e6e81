#include "serve/secret_redaction.hpp"

#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace cp::serve {

namespace {

using nlohmann::json;
constexpr size_t npos = std::string::npos;

// The scanner's capture groups, in pattern order (group 0 is the whole match). Exactly one takes part in
// a match, and says what was found.
enum Group {
  kBegin = 1,
  kEnd,
  kAwsAccess,
  kAwsSecret,
  kGithub,
  kSlack,
  kApiKey,
  kGoogle,
  kStripe,
  kJwt,
  kBearer,
  kGroups = kBearer
};

// One alternation, so a text is read once whatever it holds. The token bodies are plain `+` loops and their
// lengths are checked afterwards (plausible()): counted repetitions such as {36,} would multiply the DFA's
// states, and a text crafted to thrash its cache would push RE2 onto its slower NFA.
std::string scanner_pattern() {
  // Where a token may hold '-', it holds at most four in a row and does not end with one, so a token
  // written right before a key's "-----BEGIN" never swallows the marker.
  auto dashed = [](const char* chars) { return std::string("(?:-{0,4}[") + chars + "]+)"; };
  const std::string word = dashed("A-Za-z0-9_");
  const std::string alternatives[kGroups] = {
      "(-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)",
      "(-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)",
      "\\b((?:AKIA|ASIA)[A-Z0-9]+)\\b",
      "(?i:aws_?secret_?access_?key)[\"']?[ \\t]*[:=][ \\t]*[\"']?([A-Za-z0-9/+]+)",
      "\\b(gh[pousr]_[A-Za-z0-9]+|github_pat_[A-Za-z0-9_]+)",
      "\\b(xox[abprs]-" + dashed("A-Za-z0-9") + "+)",
      "\\b(sk-" + word + "+)",
      "\\b(AIza" + word + "+)",
      "\\b((?:sk|rk)_live_[A-Za-z0-9]+)",
      "\\b(eyJ" + word + "+\\." + word + "+\\." + word + "*)",
      "(?i:authorization)[\"']?[ \\t]*[:=][ \\t]*[\"']?(?i:bearer)[ \\t]+(" + dashed("A-Za-z0-9._~+/=") +
          "+)",
  };
  std::string p;
  for (const auto& a : alternatives) p += (p.empty() ? "" : "|") + a;
  return p;
}

RE2::Options scanner_options() {
  // Latin-1: every pattern is ASCII, and byte-wise matching reads logs that are not UTF-8 the same way.
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  return o;
}

// A pattern RE2 refused would match nothing and let every secret through: refuse to serve instead (the API
// answers 500, a stream is closed).
const RE2& checked(const RE2& re) {
  if (!re.ok()) throw std::logic_error("secret scanner pattern: " + re.error());
  return re;
}

const RE2& scanner() {
  static const RE2 re(scanner_pattern(), scanner_options());
  return checked(re);
}

const RE2& end_marker() {
  static const RE2 re("-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", scanner_options());
  return checked(re);
}

SecretKind kind_of(int group) {
  switch (group) {
    case kAwsAccess:
      return SecretKind::aws_access_key;
    case kAwsSecret:
      return SecretKind::aws_secret_key;
    case kGithub:
      return SecretKind::github_token;
    case kSlack:
      return SecretKind::slack_token;
    case kApiKey:
      return SecretKind::api_key;
    case kGoogle:
      return SecretKind::google_api_key;
    case kStripe:
      return SecretKind::stripe_key;
    case kJwt:
      return SecretKind::jwt;
    case kBearer:
      return SecretKind::bearer_token;
    default:
      return SecretKind::private_key;
  }
}

// Each marker is shorter than the shortest text plausible() accepts for its kind (and the private key's
// than a BEGIN or END line), which keeps a redacted text no longer than the original.
const char* marker(SecretKind k) {
  static const char* const m[kSecretKinds] = {
      "[REDACTED private key]", "[REDACTED aws key]",     "[REDACTED aws secret]", "[REDACTED github token]",
      "[REDACTED slack token]", "[REDACTED api key]",     "[REDACTED google key]", "[REDACTED stripe key]",
      "[REDACTED jwt]",         "[REDACTED bearer token]"};
  return m[static_cast<size_t>(k)];
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '+' || c == '/' || c == '=' || c == '.';
}

// The "@@ -a,b +c,d @@" of a hunk header, or 0 when `line` is not one. What git writes after it is a line
// of the file for context, which inside a key block is a line of the key.
size_t hunk_range_length(std::string_view line) {
  size_t i = 0;
  auto lit = [&](std::string_view p) {
    if (line.substr(i, p.size()) != p) return false;
    i += p.size();
    return true;
  };
  auto range = [&] {
    size_t d = i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    if (i == d) return false;
    if (i < line.size() && line[i] == ',') {
      d = ++i;
      while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
      if (i == d) return false;
    }
    return true;
  };
  return lit("@@ -") && range() && lit(" +") && range() && lit(" @@") ? i : 0;
}

// Whether a match is a secret rather than a word that looks like the start of one: the lengths real
// tokens have, and for the loose "sk-" form some character a kebab-case word ("sk-learn-...") lacks.
bool plausible(int group, std::string_view s) {
  switch (group) {
    case kAwsAccess:
      return s.size() == 20;
    case kAwsSecret:
      return s.size() == 40;
    case kGithub:
      return starts_with(s, "github_pat_") ? s.size() >= 11 + 22 : s.size() >= 4 + 36;
    case kSlack:
      return s.size() >= 5 + 20;
    case kApiKey:
      return s.size() >= 3 + 32 && std::any_of(s.begin() + 3, s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
             });
    case kGoogle:
      return s.size() >= 4 + 35;
    case kStripe:
      return s.size() >= 8 + 24;
    case kJwt: {
      size_t d1 = s.find('.'), d2 = s.find('.', d1 + 1);
      return d1 >= 10 && d2 - d1 - 1 >= 10;
    }
    case kBearer:
      return s.size() >= 24;
    default:
      return true;
  }
}

// What an END line's walk back may take: a PEM body's base64 and line breaks, and the backslashes of JSON's
// escaped "\n" (a key quoted inside a report).
bool pem_body_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
         c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\\';
}

class Redactor {
 public:
  explicit Redactor(const std::string& text) : t_(text) {}

  RedactionCounts run() {
    re2::StringPiece text(t_);
    re2::StringPiece g[kGroups + 1];
    size_t pos = 0;
    while (pos < t_.size() && scanner().Match(text, pos, t_.size(), RE2::UNANCHORED, g, kGroups + 1)) {
      size_t m0 = offset(g[0]), m1 = m0 + g[0].size();
      int k = 1;
      while (k < kGroups && g[k].data() == nullptr) ++k;
      if (k == kBegin) {
        pos = key_block(m0, m1);
        continue;
      }
      if (k == kEnd) {
        pos = orphan_end(m0, m1);
        continue;
      }
      // A match that is not plausible is skipped whole: restarting inside it could make a long run of
      // look-alikes ("sk-sk-sk-...") cost time quadratic in its length.
      pos = m1;
      if (!plausible(k, std::string_view(g[k].data(), g[k].size()))) continue;
      size_t s0 = offset(g[k]);
      replace(s0, s0 + g[k].size(), kind_of(k));
    }
    if (counts_.total() > 0) out_.append(t_, copied_, npos);
    return counts_;
  }

  std::string& output() { return out_; }

 private:
  size_t offset(const re2::StringPiece& p) const { return static_cast<size_t>(p.data() - t_.data()); }

  // Copies the text up to `pos` (not yet copied) into the output.
  void copy_until(size_t pos) {
    if (out_.capacity() == 0) out_.reserve(t_.size());
    out_.append(t_, copied_, pos - copied_);
    copied_ = pos;
  }

  void replace(size_t from, size_t to, SecretKind k) {
    copy_until(from);
    out_ += marker(k);
    counts_.add(k);
    copied_ = to;
  }

  // Where the line holding `pos` starts. Calls come with growing positions and each byte is looked at once,
  // so many keys on one long line cost no more than the line.
  size_t line_start(size_t pos) {
    if (pos > ls_scanned_) {
      const void* nl = ::memrchr(t_.data() + ls_scanned_, '\n', pos - ls_scanned_);
      if (nl) ls_ = static_cast<size_t>(static_cast<const char*>(nl) - t_.data()) + 1;
      ls_scanned_ = pos;
    }
    return ls_;
  }

  // The first END marker at or after `pos`: [start, end), start == npos when there is none. Searches are
  // remembered: there is no END between a search's start and what it found, so a later BEGIN before that
  // END reuses it, and the text is searched for END markers once in all.
  std::pair<size_t, size_t> find_end(size_t pos) {
    if (!end_searched_ || pos < end_from_ || (end_at_ != npos && pos > end_at_)) {
      re2::StringPiece text(t_), m;
      end_from_ = pos;
      end_searched_ = true;
      end_at_ = npos;
      if (end_marker().Match(text, pos, t_.size(), RE2::UNANCHORED, &m, 1)) {
        end_at_ = offset(m);
        end_len_ = m.size();
      }
    }
    return {end_at_, end_at_ == npos ? npos : end_at_ + end_len_};
  }

  // What a line of a key block keeps: in a diff its line marker (and a hunk header's range, without the
  // context line git appends), elsewhere what it shares with the text before BEGIN, cut back to where a word
  // of that text ends (so no new token-like word is made out of a longer one).
  void keep_prefix(std::string_view line, std::string_view begin_prefix, bool diff) {
    bool cr = !line.empty() && line.back() == '\r';
    if (cr) line.remove_suffix(1);
    std::string_view keep;
    if (diff) {
      if (line == "\\ No newline at end of file")
        keep = line;
      else if (size_t n = hunk_range_length(line))
        keep = line.substr(0, n);
      else if (!line.empty() && (line[0] == '+' || line[0] == '-' || line[0] == ' '))
        keep = line.substr(0, 1);
    } else {
      size_t n = 0;
      while (n < line.size() && n < begin_prefix.size() && line[n] == begin_prefix[n]) ++n;
      if (n < begin_prefix.size() && token_char(begin_prefix[n]))
        while (n > 0 && token_char(begin_prefix[n - 1])) --n;
      keep = line.substr(0, n);
    }
    out_ += keep;
    if (cr) out_ += '\r';
  }

  // A key block whose BEGIN marker is [b0, b1); returns where scanning goes on.
  size_t key_block(size_t b0, size_t b1) {
    size_t ls = line_start(b0);
    // The text before BEGIN on its line, unless part of it was redacted already.
    std::string_view prefix = ls >= copied_ ? std::string_view(t_).substr(ls, b0 - ls) : std::string_view();
    bool diff = prefix.size() == 1 && (prefix[0] == '+' || prefix[0] == '-' || prefix[0] == ' ');
    auto [e0, e1] = find_end(b1);
    size_t stop = e0 == npos ? t_.size() : e0;
    replace(b0, b1, SecretKind::private_key);

    const char* nl = static_cast<const char*>(std::memchr(t_.data() + b1, '\n', stop - b1));
    if (!nl) {  // END on the BEGIN line (a key quoted in one JSON string), or no END and no line after
      copied_ = e0 == npos ? t_.size() : e1;
      return copied_;
    }
    size_t pos = static_cast<size_t>(nl - t_.data());
    if (pos > b1 && t_[pos - 1] == '\r') out_ += '\r';
    out_ += '\n';
    ++pos;
    for (;;) {
      const char* lf = static_cast<const char*>(std::memchr(t_.data() + pos, '\n', t_.size() - pos));
      size_t le = lf ? static_cast<size_t>(lf - t_.data()) : t_.size();
      if (e0 != npos && e0 < le) {  // the END line: its prefix stays, the marker goes, what follows is text
        keep_prefix(std::string_view(t_).substr(pos, e0 - pos), prefix, diff);
        copied_ = e1;
        return e1;
      }
      std::string_view line = std::string_view(t_).substr(pos, le - pos);
      if (diff && starts_with(line, "diff --git ")) {  // the next file of the patch: the block ends here
        copied_ = pos;
        return pos;
      }
      keep_prefix(line, prefix, diff);
      if (le == t_.size()) {
        copied_ = le;
        return le;
      }
      out_ += '\n';
      pos = le + 1;
    }
  }

  // An END marker [e0, e1) without its BEGIN (a log tail that starts inside a key): the base64 before it
  // goes too, as far back as 64 KiB (more than any key's body) and never into what was already written.
  size_t orphan_end(size_t e0, size_t e1) {
    constexpr size_t kReach = 64u << 10;
    size_t lo = std::max(copied_, e0 > kReach ? e0 - kReach : 0);
    size_t r0 = e0;
    while (r0 > lo && pem_body_char(t_[r0 - 1])) --r0;
    replace(r0, e1, SecretKind::private_key);
    // Line breaks stay, so the lines after keep their numbers.
    for (size_t i = r0; i < e0; ++i)
      if (t_[i] == '\r' || t_[i] == '\n') out_ += t_[i];
    return e1;
  }

  const std::string& t_;
  std::string out_;
  size_t copied_ = 0;  // t_[0, copied_) is accounted for in out_
  RedactionCounts counts_;
  size_t ls_ = 0, ls_scanned_ = 0;
  bool end_searched_ = false;
  size_t end_from_ = 0, end_at_ = npos, end_len_ = 0;
};

}  // namespace

const char* secret_kind_name(SecretKind k) {
  static const char* const names[kSecretKinds] = {
      "private_key", "aws_access_key", "aws_secret_key", "github_token", "slack_token",
      "api_key",     "google_api_key", "stripe_key",     "jwt",          "bearer_token"};
  return names[static_cast<size_t>(k)];
}

size_t RedactionCounts::total() const {
  size_t n = 0;
  for (size_t c : by_kind) n += c;
  return n;
}

void RedactionCounts::add(const RedactionCounts& other) {
  for (size_t i = 0; i < kSecretKinds; ++i) by_kind[i] += other.by_kind[i];
}

std::string RedactionCounts::summary() const {
  std::string s;
  for (size_t i = 0; i < kSecretKinds; ++i)
    if (by_kind[i] > 0)
      s += (s.empty() ? "" : ",") + std::string(secret_kind_name(static_cast<SecretKind>(i))) + "=" +
           std::to_string(by_kind[i]);
  return s;
}

RedactionCounts redact_secrets(std::string& text) {
  // No secret is shorter than an AWS key id; most strings of a manifest or an event (ids, states, times)
  // are, and skip the scanner.
  constexpr size_t kShortestSecret = 20;
  if (text.size() < kShortestSecret) return {};
  Redactor r(text);
  RedactionCounts counts = r.run();
  if (counts.total() > 0) text.swap(r.output());
  return counts;
}

RedactionCounts redact_json_strings(json& j) {
  RedactionCounts counts;
  if (j.is_string()) {
    counts.add(redact_secrets(j.get_ref<std::string&>()));
  } else if (j.is_array()) {
    for (auto& v : j) counts.add(redact_json_strings(v));
  } else if (j.is_object()) {
    std::vector<std::pair<std::string, std::string>> renamed;
    for (auto it = j.begin(); it != j.end(); ++it) {
      counts.add(redact_json_strings(it.value()));
      std::string key = it.key();
      RedactionCounts k = redact_secrets(key);
      if (k.total() > 0) {
        counts.add(k);
        renamed.emplace_back(it.key(), std::move(key));
      }
    }
    for (auto& [from, to] : renamed) {
      json v = std::move(j[from]);
      j.erase(from);
      j[to] = std::move(v);
    }
  }
  return counts;
}

}  // namespace cp::serve
