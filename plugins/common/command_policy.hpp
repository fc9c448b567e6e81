// The command allowlist (policies/command_allowlist.json) as runners apply it. This is a policy check —
// which program may start, with which arguments — and not the boundary: a program it admits can still do
// whatever its own input tells it (a script under scripts/, a Makefile, a test), and the run's kernel
// sandbox is what confines that. The check is honest about what it judges:
//
//   * a command line is split into words the way a POSIX shell would (no shell ever runs it, so ';', '|'
//     or '$(...)' cannot smuggle in a second command);
//   * argv[0] must equal an entry's program exactly (a bare name admits only the bare name, found in PATH;
//     a path entry only that path);
//   * the arguments are judged word by word against the entry's `args` rules (below), in time linear in
//     their length; a legacy `args_regex` is matched with RE2 (linear time) on the joined arguments.
//
// Fail-closed: anything that cannot be split or judged is refused, with the reason. A rule file the
// checker cannot understand (unknown argument class, a misplaced "...", a regex RE2 cannot compile) is an
// error at construction, never an entry that admits everything.
//
// `args` of an entry (schemas/command_allowlist.schema.json):
//   max_args      at most this many arguments.
//   forms         the arguments must start with one of these sequences of patterns; a form ending in "..."
//                 admits further arguments, one without it admits exactly its own.
//   options       option words (starting with '-') allowed after the form, as patterns; absent = any.
//   deny_options  options refused after the form: "--name" also refuses "--name=v" and the abbreviations
//                 GNU getopt and git accept ("--na"); "-x" refuses the letter x anywhere in a bundle
//                 ("-ax", "-xVALUE").
//   operands      patterns every non-option argument after the form must match; absent = any.
//   paths         "relative": every argument that can name a file — each operand, the value of
//                 "--name=value", each part after '=' or ':' (make VAR=/x, PATH-like lists) — must be
//                 relative (no leading '/' or '~', no '$' anywhere) with no '..' component; a short
//                 option word ("-C..", "-t/x", "-ocache_dir=~") may not contain '/', "..", '~' or '$'.
//                 Arguments matched by <sed-edit> are scripts, not paths, and are exempt.
//
// `env` of an entry: variables the runner sets in the admitted program's environment. The shipped
// python3 test entry sets PYTHONSAFEPATH=1, because `python3 -m pytest` otherwise puts the working folder
// first on sys.path and a worktree file pytest.py or unittest.py would run instead of the test runner
// the entry admits.
// Patterns: a literal word; '*' (any run without '/'), '?' and '**' (any run) as in allowed_paths; or a
// whole-word class: <path> (a relative path without '..' that does not start with '-'), <number>
// (digits, optionally a fraction), <word> (letters, digits and _ . / + -, not starting with '-'),
// <sed-edit> (one plain `s/re/repl/[gpI0-9]*` or `y/abc/xyz/` command: no address, no second command, no
// w/W/r/R/e).
#pragma once

#include "path_match.hpp"

#include <re2/re2.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cctype>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cp::plugins {

// A longer command line is refused before it is judged: Linux refuses a longer single argument anyway
// (MAX_ARG_STRLEN), and nothing a runner is meant to run needs more.
inline constexpr size_t kMaxCommandBytes = 128 * 1024;
// The joined arguments a legacy args_regex is matched against are capped as well.
inline constexpr size_t kMaxArgsRegexInput = 64 * 1024;

// Splits a command line like a POSIX shell would split words: whitespace, '...', "...", backslash.
// Returns false on an unterminated quote.
inline bool split_words(const std::string& s, std::vector<std::string>& out) {
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        cur += c;
    } else if (quote == '"') {
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\'))
        cur += s[++i];
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return false;
  if (in_word) out.push_back(cur);
  return true;
}

inline std::string join_words(const std::vector<std::string>& words, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < words.size(); ++i) out += (i > from ? " " : "") + words[i];
  return out;
}

// Quoted for a reason text, shortened: a refused 100 KB argument must not make a 100 KB reason.
inline std::string shown(std::string_view w) {
  constexpr size_t kShown = 80;
  return "'" + std::string(w.substr(0, kShown)) + (w.size() > kShown ? "...'" : "'");
}

// Splits `line` into argv, refusing what cannot be judged: an empty or unsplittable line, an oversized one,
// a NUL byte (execve would cut the argument there, so the program would see less than was judged).
inline bool split_command(const std::string& line, std::vector<std::string>& argv, std::string& denial) {
  argv.clear();
  if (line.size() > kMaxCommandBytes) {
    denial = "command line is " + std::to_string(line.size()) + " bytes, longer than the " +
             std::to_string(kMaxCommandBytes) + " a command may have";
    return false;
  }
  if (line.find('\0') != std::string::npos) {
    denial = "command line contains a NUL byte";
    return false;
  }
  if (!split_words(line, argv) || argv.empty()) {
    argv.clear();
    denial = "cannot split into words (unterminated quote or empty)";
    return false;
  }
  return true;
}

namespace detail {

// One piece of a word that may name a file: no leading '/' or '~', no '$' anywhere, no '..' component.
// Programs expand these themselves, without a shell: pytest runs its --rootdir, cache_dir and similar
// values through os.path.expanduser and os.path.expandvars, so "~" or "$HOME/x" names a place outside
// the working folder. expanduser only reads a leading '~' ("HEAD~1" stays a git revision); expandvars
// reads '$' anywhere.
inline bool relative_piece_ok(std::string_view piece, std::string& why) {
  if (!piece.empty() && piece[0] == '/') {
    why = "absolute path";
    return false;
  }
  if (!piece.empty() && piece[0] == '~') {
    why = "path relative to a home folder";
    return false;
  }
  if (piece.find('$') != std::string_view::npos) {
    why = "'$' (a program may expand it to a path)";
    return false;
  }
  size_t start = 0;
  for (size_t i = 0; i <= piece.size(); ++i)
    if (i == piece.size() || piece[i] == '/') {
      if (piece.substr(start, i - start) == "..") {
        why = "'..' component";
        return false;
      }
      start = i + 1;
    }
  return true;
}

}  // namespace detail

// A word that may name a file stays inside the working folder: the word and every part after a '=' or ':'
// (an option's or a variable's value, a search-path list) is relative and has no '..' component.
inline bool relative_path_ok(std::string_view w, std::string& why) {
  size_t start = 0;
  for (size_t i = 0; i <= w.size(); ++i)
    if (i == w.size() || w[i] == '=' || w[i] == ':') {
      if (!detail::relative_piece_ok(w.substr(start, i - start), why)) return false;
      start = i + 1;
    }
  return true;
}

// One plain sed substitution or transliteration, nothing else: `s<d>re<d>repl<d>[gpI0-9]*` or
// `y<d>abc<d>xyz<d>`. The delimiter is scanned for the way sed does (a backslash escapes the next
// character), so whatever follows the third delimiter is the flags, and the flags are checked in full:
// sed's `w FILE` and `e` (as flags or commands), `r`/`R`/`W` and a second command all fail here.
inline bool plain_sed_edit(std::string_view s, std::string& why) {
  if (s.size() < 4 || (s[0] != 's' && s[0] != 'y')) {
    why = "not a single s/// or y/// command";
    return false;
  }
  if (s.find('\n') != std::string_view::npos) {
    why = "contains a newline (a second command)";
    return false;
  }
  const char d = s[1];
  if (d == '\\' || std::isalnum(static_cast<unsigned char>(d)) ||
      std::isspace(static_cast<unsigned char>(d))) {
    why = "delimiter " + shown(std::string_view(&s[1], 1)) + " is not allowed";
    return false;
  }
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    for (;; ++i) {
      if (i >= s.size()) {
        why = "unterminated " + std::string(1, s[0]) + " command";
        return false;
      }
      if (s[i] == '\\') {
        if (++i >= s.size()) {
          why = "unterminated " + std::string(1, s[0]) + " command";
          return false;
        }
        continue;
      }
      if (s[i] == d) break;
    }
    ++i;
  }
  std::string_view flags = s.substr(i);
  if (s[0] == 'y' && !flags.empty()) {
    why = "y/// takes no flags or further commands";
    return false;
  }
  for (char c : flags)
    if (!(c == 'g' || c == 'p' || c == 'I' || std::isdigit(static_cast<unsigned char>(c)))) {
      why = "flag or command " + shown(std::string_view(&c, 1)) +
            " after the substitution is not allowed (only g, p, I and a number)";
      return false;
    }
  return true;
}

// A pattern of an `args` rule, checked once when the policy is read.
inline bool is_class(const std::string& p) {
  return p.size() > 2 && p.front() == '<' && p.back() == '>';
}

inline void check_pattern(const std::string& p, const std::string& where) {
  if (is_class(p) && p != "<path>" && p != "<number>" && p != "<word>" && p != "<sed-edit>")
    throw std::invalid_argument(where + ": unknown argument class " + p +
                                " (known: <path>, <number>, <word>, <sed-edit>)");
}

inline bool arg_matches(const std::string& pattern, const std::string& arg, std::string& why) {
  if (pattern == "<sed-edit>") return plain_sed_edit(arg, why);
  if (pattern == "<path>") {
    if (arg.empty() || arg[0] == '-') {
      why = "not a path";
      return false;
    }
    return relative_path_ok(arg, why);
  }
  if (pattern == "<number>") {
    size_t i = 0;
    while (i < arg.size() && std::isdigit(static_cast<unsigned char>(arg[i]))) ++i;
    bool ok = i > 0;
    if (ok && i < arg.size() && arg[i] == '.') {
      size_t f = ++i;
      while (i < arg.size() && std::isdigit(static_cast<unsigned char>(arg[i]))) ++i;
      ok = i > f;
    }
    if (!ok || i != arg.size()) why = "not a number";
    return ok && i == arg.size();
  }
  if (pattern == "<word>") {
    bool ok = !arg.empty() && arg[0] != '-';
    for (char c : arg)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
                  c == '+' || c == '-');
    if (!ok) why = "not a plain word (letters, digits, _ . / + -)";
    return ok;
  }
  bool ok = detail::glob(pattern, arg);
  if (!ok) why = "does not match " + pattern;
  return ok;
}

struct ArgRules {
  std::optional<size_t> max_args;
  std::vector<std::vector<std::string>> forms;  // empty: no form required
  std::optional<std::vector<std::string>> options, operands;
  std::vector<std::string> deny_options;
  bool relative_paths = false;
};

struct AllowEntry {
  std::string id, program;
  std::optional<ArgRules> args;
  std::shared_ptr<const re2::RE2> args_regex;
  // "NAME=value" entries the runner adds to the started program's environment (see spawn_environment).
  std::vector<std::string> env;
};

namespace detail {

inline std::vector<std::string> string_list(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) throw std::invalid_argument(where + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& s : j) {
    if (!s.is_string()) throw std::invalid_argument(where + " must be an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

inline ArgRules parse_args(const nlohmann::json& a, const std::string& where) {
  if (!a.is_object()) throw std::invalid_argument(where + " must be an object");
  ArgRules r;
  for (const auto& [key, value] : a.items()) {
    std::string at = where + "." + key;
    if (key == "max_args") {
      if (!value.is_number_unsigned()) throw std::invalid_argument(at + " must be a non-negative integer");
      r.max_args = value.get<size_t>();
    } else if (key == "forms") {
      if (!value.is_array() || value.empty()) throw std::invalid_argument(at + " must be a non-empty array");
      for (const auto& f : value) {
        auto form = string_list(f, at);
        for (size_t i = 0; i < form.size(); ++i) {
          if (form[i] == "..." && i + 1 != form.size())
            throw std::invalid_argument(at + ": \"...\" may only end a form");
          check_pattern(form[i], at);
        }
        r.forms.push_back(std::move(form));
      }
    } else if (key == "options" || key == "operands") {
      auto list = string_list(value, at);
      for (const auto& p : list) check_pattern(p, at);
      (key == "options" ? r.options : r.operands) = std::move(list);
    } else if (key == "deny_options") {
      r.deny_options = string_list(value, at);
      for (const auto& d : r.deny_options)
        if (d.size() < 2 || d[0] != '-' || (d[1] != '-' && d.size() != 2) || d == "--")
          throw std::invalid_argument(at + ": " + d + " is neither \"-x\" nor \"--name\"");
    } else if (key == "paths") {
      if (value != "relative" && value != "any") throw std::invalid_argument(at + " must be relative or any");
      r.relative_paths = value == "relative";
    } else {
      throw std::invalid_argument(where + ": unknown rule " + key);
    }
  }
  return r;
}

// An entry's "env": names of environment variables (upper case, digits, '_') with string values.
inline std::vector<std::string> parse_env(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + " must be an object of strings");
  std::vector<std::string> out;
  for (const auto& [name, value] : j.items()) {
    bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char c : name)
      ok = ok && (std::isupper(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) throw std::invalid_argument(where + ": " + name + " is not a variable name ([A-Z_][A-Z0-9_]*)");
    if (!value.is_string() || value.get<std::string>().find('\0') != std::string::npos)
      throw std::invalid_argument(where + "." + name + " must be a string without NUL bytes");
    out.push_back(name + "=" + value.get<std::string>());
  }
  return out;
}

inline bool is_option_word(const std::string& w) {
  return w.size() > 1 && w[0] == '-';
}

// Is option word `w` one that `deny` names (see the header comment)?
inline bool option_denied(const std::string& w, const std::string& deny) {
  if (deny.compare(0, 2, "--") == 0) {
    if (w.compare(0, 2, "--") != 0) return false;
    std::string_view name = std::string_view(w).substr(0, w.find('='));
    return name == deny || (name.size() >= 3 && deny.compare(0, name.size(), name) == 0);
  }
  if (w.compare(0, 2, "--") == 0) return false;
  return w.find(deny[1], 1) != std::string::npos;
}

// The `paths: relative` judgement of one argument.
inline bool path_rule_ok(const std::string& w, bool option, std::string& why) {
  if (option && w.compare(0, 2, "--") == 0) {
    size_t eq = w.find('=');
    return eq == std::string::npos || relative_path_ok(std::string_view(w).substr(eq + 1), why);
  }
  if (option) {
    // A short option's value may be glued on ("-ocache_dir=~", "-C~"), so the whole word is held to the
    // strictest reading: none of '/', "..", '~' or '$' anywhere.
    for (std::string_view bad : {"/", "..", "~", "$"})
      if (w.find(bad) != std::string::npos) {
        why = "'" + std::string(bad) + "' inside a short option word (give a path as a separate argument)";
        return false;
      }
    return true;
  }
  return relative_path_ok(w, why);
}

// Judges args (argv[1..]) against one form (or none) and the other rules. `progress` says how far the
// arguments got (fixed arguments matched, one more once the whole fixed part matched), so a refusal can
// explain itself with the form the command was evidently meant for.
inline bool judge_form(const ArgRules& r, const std::vector<std::string>* form,
                       const std::vector<std::string>& argv, std::string& why, size_t& progress) {
  const size_t n = argv.size() - 1;
  size_t fixed = 0;
  progress = 0;
  std::vector<bool> script(argv.size(), false);  // matched by <sed-edit>: not a path
  if (form) {
    bool open = !form->empty() && form->back() == "...";
    fixed = form->size() - (open ? 1 : 0);
    if (n < fixed || (!open && n != fixed)) {
      why = "wrong number of arguments for this form";
      return false;
    }
    for (size_t i = 0; i < fixed; ++i) {
      std::string w;
      if (!arg_matches((*form)[i], argv[1 + i], w)) {
        why = "argument " + shown(argv[1 + i]) + ": " + w;
        return false;
      }
      script[1 + i] = (*form)[i] == "<sed-edit>";
      progress = i + 1;
    }
    progress = fixed + 1;
  }
  bool after_dd = false;
  for (size_t i = 1 + fixed; i < argv.size(); ++i) {
    const std::string& w = argv[i];
    if (w == "--" && !after_dd) {
      after_dd = true;
      if (r.options) {
        bool listed = false;
        for (const auto& p : *r.options) listed = listed || p == "--";
        if (!listed) {
          why = "option -- is not allowed here";
          return false;
        }
      }
      continue;
    }
    if (!after_dd && is_option_word(w)) {
      for (const auto& d : r.deny_options)
        if (option_denied(w, d)) {
          why = "option " + shown(w) + " is refused (" + d + ")";
          return false;
        }
      if (r.options) {
        bool ok = false;
        std::string ignored;
        for (const auto& p : *r.options) ok = ok || arg_matches(p, w, ignored);
        if (!ok) {
          why = "option " + shown(w) + " is not among the allowed options";
          return false;
        }
      }
    } else if (r.operands) {
      bool ok = false;
      std::string last;
      for (const auto& p : *r.operands) ok = ok || arg_matches(p, w, last);
      if (!ok) {
        why = "argument " + shown(w) + " is not allowed here: " + last;
        return false;
      }
    }
  }
  if (r.relative_paths) {
    after_dd = false;
    for (size_t i = 1; i < argv.size(); ++i) {
      const std::string& w = argv[i];
      bool option = !after_dd && is_option_word(w);
      if (i > fixed && w == "--") after_dd = true;
      std::string p;
      if (!script[i] && !path_rule_ok(w, option, p)) {
        why = "argument " + shown(w) + ": " + p + " (paths must stay inside the working folder)";
        return false;
      }
    }
  }
  return true;
}

inline std::string describe(const std::vector<std::string>& form) {
  std::string s;
  for (const auto& p : form) s += (s.empty() ? "" : " ") + p;
  return "[" + s + "]";
}

// `best` is set to how far the arguments got in the form that came closest (see judge_form).
inline bool judge_args(const ArgRules& r, const std::vector<std::string>& argv, std::string& why,
                       size_t& best) {
  const size_t n = argv.size() - 1;
  best = 0;
  if (r.max_args && n > *r.max_args) {
    why = std::to_string(n) + " arguments, at most " + std::to_string(*r.max_args) + " allowed";
    return false;
  }
  size_t progress = 0;
  if (r.forms.empty()) return judge_form(r, nullptr, argv, why, progress);
  std::string best_why;
  for (const auto& f : r.forms) {
    std::string w;
    if (judge_form(r, &f, argv, w, progress)) return true;
    if (best_why.empty() || progress > best) best_why = describe(f) + ": " + w, best = progress;
  }
  std::string all;
  for (const auto& f : r.forms) all += (all.empty() ? "" : ", ") + describe(f);
  why = "arguments fit none of the allowed forms " + all + "; closest " + best_why;
  return false;
}

}  // namespace detail

class CommandAllowlist {
 public:
  // Throws std::invalid_argument when an entry cannot be understood.
  explicit CommandAllowlist(const nlohmann::json& policy) {
    for (const auto& e : policy.value("entries", nlohmann::json::array())) {
      AllowEntry a{e.value("id", ""), e.value("program", ""), std::nullopt, nullptr, {}};
      std::string where = "command allowlist entry '" + a.id + "'";
      if (e.contains("env")) a.env = detail::parse_env(e["env"], where + " env");
      if (e.contains("args")) a.args = detail::parse_args(e["args"], where + " args");
      if (e.contains("args_regex")) {
        RE2::Options o;
        o.set_log_errors(false);
        auto re = std::make_shared<const re2::RE2>(e["args_regex"].get<std::string>(), o);
        if (!re->ok()) throw std::invalid_argument(where + ": args_regex does not compile: " + re->error());
        a.args_regex = std::move(re);
      }
      entries_.push_back(std::move(a));
    }
  }

  // The entry admitting `argv`, or nullptr with `denial` saying why not.
  const AllowEntry* judge(const std::vector<std::string>& argv, std::string& denial) const {
    if (argv.empty()) {
      denial = "empty command";
      return nullptr;
    }
    // Several entries may name one program (python3 for tests and for scripts); the refusal shown is
    // that of the entry whose form the arguments got furthest into, the first of them on a tie.
    std::string first_refusal;
    size_t best = 0;
    for (const auto& a : entries_) {
      if (argv[0] != a.program) continue;
      std::string why;
      size_t progress = 0;
      if (admits(a, argv, why, progress)) return &a;
      if (first_refusal.empty() || progress > best)
        first_refusal = "arguments refused by allowlist entry '" + a.id + "': " + why, best = progress;
    }
    if (!first_refusal.empty())
      denial = first_refusal;
    else
      denial = argv[0].find('/') != std::string::npos
                   ? "program given as a path; only bare names on the allowlist may run"
                   : "not on the command allowlist (policies/command_allowlist.json)";
    return nullptr;
  }

  // Splits `line` and judges it: the entry admitting it (argv filled), or nullptr with `denial`.
  const AllowEntry* admit(const std::string& line, std::vector<std::string>& argv,
                          std::string& denial) const {
    if (!split_command(line, argv, denial)) return nullptr;
    return judge(argv, denial);
  }

 private:
  static bool admits(const AllowEntry& a, const std::vector<std::string>& argv, std::string& why,
                     size_t& progress) {
    if (a.args && !detail::judge_args(*a.args, argv, why, progress)) return false;
    if (a.args_regex) {
      std::string joined = join_words(argv, 1);
      if (joined.size() > kMaxArgsRegexInput) {
        why = "arguments longer than " + std::to_string(kMaxArgsRegexInput) + " bytes for args_regex";
        return false;
      }
      if (!RE2::FullMatch(re2::StringPiece(joined.data(), joined.size()), *a.args_regex)) {
        why = "arguments do not match args_regex";
        return false;
      }
    }
    return true;
  }

  std::vector<AllowEntry> entries_;
};

// The environment to start an admitted command with: nullopt (inherit cp-host's, as the host does by
// default) when the entry declares no "env"; otherwise cp-host's environment with the entry's variables
// set, replacing any value cp-host had. The host still adds the run's own variables (CP_RUN_ID, TMPDIR...)
// on top.
inline std::optional<std::vector<std::string>> spawn_environment(const AllowEntry& entry) {
  if (entry.env.empty()) return std::nullopt;
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    bool replaced = false;
    for (const auto& set : entry.env)
      replaced =
          replaced || kv.substr(0, kv.find('=') + 1) == std::string_view(set).substr(0, set.find('=') + 1);
    if (!replaced) env.emplace_back(kv);
  }
  env.insert(env.end(), entry.env.begin(), entry.env.end());
  return env;
}

}  // namespace cp::plugins
