// Secrets in what the API serves. A run's evidence (diff.patch, its logs, reports quoting log tails, event
// payloads) is written by code cp-host does not trust, and may hold a private key it copied or a token it
// printed. The API hands viewers a copy with those secrets replaced by markers ("[REDACTED github token]");
// the bundle on disk is never changed. Matching is RE2 (linear time, no backtracking), one pass per text.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstddef>
#include <string>

namespace cp::serve {

enum class SecretKind {
  private_key,     // a PEM "-----BEGIN ... PRIVATE KEY-----" block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP)
  aws_access_key,  // AKIA/ASIA + 16
  aws_secret_key,  // the 40 characters after aws_secret_access_key = / :
  github_token,    // ghp_, gho_, ghu_, ghs_, ghr_, github_pat_
  slack_token,     // xoxa-, xoxb-, xoxp-, xoxr-, xoxs-
  api_key,         // sk-..., sk-ant-..., sk-proj-... (OpenAI, Anthropic)
  google_api_key,  // AIza + 35
  stripe_key,      // sk_live_, rk_live_
  jwt,             // eyJ<header>.<payload>.<signature>
  bearer_token,    // the token of an "Authorization: Bearer <token>"
};
constexpr size_t kSecretKinds = static_cast<size_t>(SecretKind::bearer_token) + 1;

// "private_key", "github_token", ...: the names the API reports.
const char* secret_kind_name(SecretKind k);

struct RedactionCounts {
  std::array<size_t, kSecretKinds> by_kind{};

  size_t total() const;
  void add(const RedactionCounts& other);
  void add(SecretKind k) { ++by_kind[static_cast<size_t>(k)]; }
  size_t operator[](SecretKind k) const { return by_kind[static_cast<size_t>(k)]; }
  // "github_token=1,private_key=1" (kinds found, in enum order); "" when none.
  std::string summary() const;
};

// Replaces every secret in `text` by a marker naming its kind and returns how many of each were replaced.
// `text` is rewritten only when something was found. The result is never longer than the input (a marker
// is shorter than the shortest secret it stands for), so a size limit on the input bounds the output.
//
// A private key block is redacted from its BEGIN line through its END line, keeping the line structure:
// the BEGIN line becomes "<what preceded BEGIN>[REDACTED private key]", every further line of the block
// keeps only its prefix — in a diff (BEGIN preceded by exactly '+', '-' or ' ') each line's diff marker and
// hunk headers, elsewhere what the line shares with the text before BEGIN (a log's "stdout: ", indentation).
// A block without END runs to the end of the text (in a diff: to the next "diff --git" line). An END without
// its BEGIN (a log tail that cut the key's head off) takes the base64 before it with it.
RedactionCounts redact_secrets(std::string& text);

// Redacts every string of a JSON document in place, object keys included; each string on its own.
RedactionCounts redact_json_strings(nlohmann::json& j);

}  // namespace cp::serve
