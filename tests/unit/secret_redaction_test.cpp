// The secret scanner behind the API's redacted views: each kind it knows, key blocks inside diffs, logs and
// JSON, what it must leave alone, and large inputs.
#include "serve/secret_redaction.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace cp::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Fake secrets are put together at run time, so this file holds nothing a secret scanner would flag.
std::string chars(size_t n, const std::string& alphabet, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}
const std::string kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const std::string kBase64 = kAlnum + "+/";

// The body lines of a fake key: 70 base64 characters each, the last one shorter with padding.
std::vector<std::string> key_body(unsigned seed, size_t lines = 6) {
  std::vector<std::string> body;
  for (size_t i = 0; i + 1 < lines; ++i) body.push_back(chars(70, kBase64, seed + static_cast<unsigned>(i)));
  body.push_back(chars(30, kBase64, seed + 99) + "==");
  return body;
}

std::string pem(const std::string& label, const std::vector<std::string>& body,
                const std::string& prefix = "", const std::string& eol = "\n") {
  std::string s = prefix + "-----BEGIN " + label + "-----" + eol;
  for (const auto& l : body) s += prefix + l + eol;
  return s + prefix + "-----END " + label + "-----" + eol;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// Redacts a copy; checks what holds for every input: never longer, and a second pass finds nothing.
RedactionCounts redact(std::string& text) {
  size_t before = text.size();
  RedactionCounts c = redact_secrets(text);
  EXPECT_LE(text.size(), before);
  std::string again = text;
  EXPECT_EQ(redact_secrets(again).total(), 0u) << "a redacted text still holds a secret:\n" << text;
  return c;
}

struct Token {
  SecretKind kind;
  std::string secret;
  std::string marker;
};

std::vector<Token> tokens() {
  const std::string gh = "gh";
  return {
      {SecretKind::aws_access_key,
       "AK" + std::string("IA") + chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 1), "[REDACTED aws key]"},
      {SecretKind::aws_access_key,
       "AS" + std::string("IA") + chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 2), "[REDACTED aws key]"},
      {SecretKind::github_token, gh + "p_" + chars(36, kAlnum, 3), "[REDACTED github token]"},
      {SecretKind::github_token, gh + "o_" + chars(36, kAlnum, 4), "[REDACTED github token]"},
      {SecretKind::github_token, gh + "u_" + chars(36, kAlnum, 5), "[REDACTED github token]"},
      {SecretKind::github_token, gh + "s_" + chars(36, kAlnum, 6), "[REDACTED github token]"},
      {SecretKind::github_token, gh + "r_" + chars(36, kAlnum, 7), "[REDACTED github token]"},
      {SecretKind::github_token,
       "github" + std::string("_pat_") + chars(22, kAlnum, 8) + "_" + chars(59, kAlnum, 9),
       "[REDACTED github token]"},
      {SecretKind::slack_token,
       "xo" + std::string("xb-") + chars(12, "0123456789", 10) + "-" + chars(13, "0123456789", 11) + "-" +
           chars(24, kAlnum, 12),
       "[REDACTED slack token]"},
      {SecretKind::slack_token, "xo" + std::string("xp-") + chars(40, kAlnum, 13), "[REDACTED slack token]"},
      {SecretKind::api_key, "s" + std::string("k-") + chars(48, kAlnum, 14), "[REDACTED api key]"},
      {SecretKind::api_key, "s" + std::string("k-proj-") + chars(120, kAlnum + "_-", 15),
       "[REDACTED api key]"},
      {SecretKind::api_key, "s" + std::string("k-ant-api03-") + chars(93, kAlnum + "_-", 16) + "AA",
       "[REDACTED api key]"},
      {SecretKind::google_api_key, "AI" + std::string("za") + chars(35, kAlnum + "_-", 17),
       "[REDACTED google key]"},
      {SecretKind::stripe_key, "sk" + std::string("_live_") + chars(24, kAlnum, 18), "[REDACTED stripe key]"},
      {SecretKind::stripe_key, "rk" + std::string("_live_") + chars(99, kAlnum, 19), "[REDACTED stripe key]"},
      {SecretKind::jwt,
       "eyJ" + chars(33, kAlnum, 20) + ".eyJ" + chars(40, kAlnum + "_-", 21) + "." +
           chars(43, kAlnum + "_-", 22),
       "[REDACTED jwt]"},
  };
}

TEST(SecretRedaction, EachTokenKindIsReplacedByItsMarker) {
  for (const auto& t : tokens()) {
    for (const std::string& around : {std::string(" "), std::string("\""), std::string("\n")}) {
      std::string text = "before" + around + t.secret + around + "after";
      RedactionCounts c = redact(text);
      EXPECT_EQ(c.total(), 1u) << t.secret;
      EXPECT_EQ(c[t.kind], 1u) << t.secret;
      EXPECT_EQ(text, "before" + around + t.marker + around + "after") << t.secret;
    }
  }
}

TEST(SecretRedaction, KeepsTheNameOfWhatWasRedacted) {
  std::string text = "Authorization: Bearer " + chars(40, kAlnum + "._-", 30) + "\r\n";
  RedactionCounts c = redact(text);
  EXPECT_EQ(c[SecretKind::bearer_token], 1u);
  EXPECT_EQ(text, "Authorization: Bearer [REDACTED bearer token]\r\n");

  text = R"(curl -H "authorization: bearer )" + chars(64, kAlnum, 31) + R"(" https://example.org)";
  EXPECT_EQ(redact(text)[SecretKind::bearer_token], 1u);
  EXPECT_EQ(text, R"(curl -H "authorization: bearer [REDACTED bearer token]" https://example.org)");

  text = "aws_secret_access_key = " + chars(40, kBase64, 32) + "\nregion = eu-west-1\n";
  EXPECT_EQ(redact(text)[SecretKind::aws_secret_key], 1u);
  EXPECT_EQ(text, "aws_secret_access_key = [REDACTED aws secret]\nregion = eu-west-1\n");

  RedactionCounts both;
  both.add(SecretKind::github_token);
  both.add(SecretKind::private_key);
  both.add(SecretKind::private_key);
  EXPECT_EQ(both.summary(), "private_key=2,github_token=1");
  EXPECT_EQ(RedactionCounts().summary(), "");
}

TEST(SecretRedaction, EveryPrivateKeyVariantGoesBeginToEnd) {
  for (const char* label : {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY",
                            "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"}) {
    auto body = key_body(40);
    std::string key = pem(label, body);
    std::string text = "before\n" + key + "after\n";
    RedactionCounts c = redact(text);
    EXPECT_EQ(c.total(), 1u) << label;
    EXPECT_EQ(c[SecretKind::private_key], 1u) << label;
    // The lines stay (empty), the first carries the marker, nothing of the key is left.
    EXPECT_EQ(text, "before\n[REDACTED private key]\n" + std::string(body.size() + 1, '\n') + "after\n");
    EXPECT_EQ(text.find("-----"), std::string::npos) << text;
  }
  // A legacy encrypted PEM, with its headers, and CRLF line ends.
  std::vector<std::string> body{"Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,0123456789ABCDEF", ""};
  for (const auto& l : key_body(41)) body.push_back(l);
  std::string text = pem("RSA PRIVATE KEY", body, "", "\r\n") + "done\r\n";
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(
      text, "[REDACTED private key]\r\n" + [&] {
        std::string s;
        for (size_t i = 0; i <= body.size(); ++i) s += "\r\n";
        return s;
      }() + "done\r\n");
}

TEST(SecretRedaction, AKeyAddedInAPatchKeepsThePatchShape) {
  auto body = key_body(50);
  std::string key_lines = pem("OPENSSH PRIVATE KEY", body, "+");
  std::string patch =
      "diff --git a/leak/id_ed25519 b/leak/id_ed25519\n"
      "new file mode 100644\n"
      "index 0000000..3b18e51\n"
      "--- /dev/null\n"
      "+++ b/leak/id_ed25519\n"
      "@@ -0,0 +1,8 @@\n" +
      key_lines +
      "diff --git a/src/greeting.sh b/src/greeting.sh\n"
      "index 1111111..2222222 100644\n"
      "--- a/src/greeting.sh\n"
      "+++ b/src/greeting.sh\n"
      "@@ -1 +1 @@\n"
      "-echo \"Helo\"\n"
      "+echo \"Hello\"\n";
  std::string text = patch;
  RedactionCounts c = redact(text);
  EXPECT_EQ(c.total(), 1u);
  auto in = lines_of(patch), out = lines_of(text);
  ASSERT_EQ(out.size(), in.size()) << text;
  for (size_t i = 0; i < in.size(); ++i) {
    bool in_key = i >= 6 && i < 6 + body.size() + 2;
    if (!in_key) {
      EXPECT_EQ(out[i], in[i]);
    } else if (i == 6) {
      EXPECT_EQ(out[i], "+[REDACTED private key]");
    } else {
      EXPECT_EQ(out[i], "+") << "line " << i;
    }
  }
  for (const auto& l : body) EXPECT_EQ(text.find(l), std::string::npos);
}

TEST(SecretRedaction, AKeyChangedInPlaceKeepsEveryDiffMarker) {
  auto body = key_body(60);
  std::string patch = "@@ -1,8 +1,8 @@ header\n -----BEGIN RSA PRIVATE KEY-----\n-" + body[0] + "\n+" +
                      body[1] + "\n " + body[2] + "\n@@ -20,3 +20,3 @@ " + body[3] + "\n " + body[4] +
                      "\n\\ No newline at end of file\n -----END RSA PRIVATE KEY-----\n";
  std::string text = patch;
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text,
            "@@ -1,8 +1,8 @@ header\n [REDACTED private key]\n-\n+\n \n@@ -20,3 +20,3 @@\n \n"
            "\\ No newline at end of file\n \n");
}

TEST(SecretRedaction, KeysInLogsAndJson) {
  auto body = key_body(70);
  // A log whose lines carry a prefix keep it.
  std::string text = "stdout: reading key\n" + pem("EC PRIVATE KEY", body, "stdout: ") + "stdout: done\n";
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(
      text, "stdout: reading key\nstdout: [REDACTED private key]\n" + [&] {
        std::string s;
        for (size_t i = 0; i <= body.size(); ++i) s += "stdout: \n";
        return s;
      }() + "stdout: done\n");

  // A key inside one JSON string (escaped line breaks): the document stays valid JSON.
  json doc{{"text", "here it is: " + pem("RSA PRIVATE KEY", body)}, {"n", 1}};
  text = doc.dump();
  EXPECT_EQ(redact(text).total(), 1u);
  json back = json::parse(text, nullptr, false);
  ASSERT_FALSE(back.is_discarded()) << text;
  EXPECT_EQ(back["text"], "here it is: [REDACTED private key]\n");
  EXPECT_EQ(back["n"], 1);

  // The same through the JSON walk (event payloads): keys, values, nested.
  json ev{{"type", "AGENT_MESSAGE"},
          {"payload",
           {{"text", pem("PRIVATE KEY", body)},
            {"list", {"ok", "gh" + std::string("p_") + chars(36, kAlnum, 71)}},
            {"gh" + std::string("s_") + chars(36, kAlnum, 72), true}}}};
  RedactionCounts c = redact_json_strings(ev);
  EXPECT_EQ(c.total(), 3u);
  EXPECT_EQ(c[SecretKind::github_token], 2u);
  EXPECT_EQ(ev["payload"]["text"], "[REDACTED private key]\n" + std::string(body.size() + 1, '\n'));
  EXPECT_EQ(ev["payload"]["list"][1], "[REDACTED github token]");
  EXPECT_TRUE(ev["payload"].contains("[REDACTED github token]"));
  EXPECT_EQ(ev["type"], "AGENT_MESSAGE");
}

TEST(SecretRedaction, ATokenRightBeforeAKeyLeavesItsBeginMarker) {
  auto body = key_body(75);
  std::string token = "s" + std::string("k-ant-api03-") + chars(95, kAlnum, 76);
  std::string text = "+" + token + pem("RSA PRIVATE KEY", body, "+").substr(1) + "+done\n";
  RedactionCounts c = redact(text);
  EXPECT_EQ(c[SecretKind::api_key], 1u);
  EXPECT_EQ(c[SecretKind::private_key], 1u);
  EXPECT_EQ(text.rfind("+[REDACTED api key][REDACTED private key]\n", 0), 0u) << text;
  for (const auto& l : body) EXPECT_EQ(text.find(l), std::string::npos);
}

// A fuzz finding (fuzz/corpus/secret_redaction/regress-hunk-header-context.patch): a line starting with "@@"
// inside a key block kept everything up to a later "@@".
TEST(SecretRedaction, AHunkHeaderInsideAKeyKeepsOnlyItsRange) {
  auto body = key_body(77);
  // A hunk header keeps its range, never the file's line git quotes after it.
  std::string text = " -----BEGIN EC PRIVATE KEY-----\n@@ -1,2 +1,2 @@ " + body[0] + "\n@@ " + body[1] +
                     " @@\n -----END EC PRIVATE KEY-----\n";
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text, " [REDACTED private key]\n@@ -1,2 +1,2 @@\n\n \n");
  text = cp::test::read_file(fs::path(CP_SOURCE_DIR) /
                             "fuzz/corpus/secret_redaction/regress-hunk-header-context.patch");
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text.find("sk-"), std::string::npos) << text;
}

TEST(SecretRedaction, UnterminatedAndHeadlessBlocks) {
  auto body = key_body(80);
  // No END: everything after BEGIN goes.
  std::string text =
      "log start\n-----BEGIN RSA PRIVATE KEY-----\n" + body[0] + "\n" + body[1] + "\nmore text";
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text, "log start\n[REDACTED private key]\n\n\n");
  // In a patch, up to the next file.
  text = "+++ b/k\n@@ -0,0 +1,3 @@\n+-----BEGIN PRIVATE KEY-----\n+" + body[0] + "\n+" + body[1] +
         "\ndiff --git a/x b/x\n+" + chars(10, kAlnum, 81) + "\n";
  std::string next = text.substr(text.find("diff --git"));
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text, "+++ b/k\n@@ -0,0 +1,3 @@\n+[REDACTED private key]\n+\n+\n" + next);
  // BEGIN on a last line of its own.
  text = "x\n-----BEGIN OPENSSH PRIVATE KEY-----";
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text, "x\n[REDACTED private key]");

  // A log tail that starts inside the key: the base64 before the END line goes with it.
  text = body[2] + "\n" + body[3] + "\n" + body[5] + "\n-----END RSA PRIVATE KEY-----\nbuild: done\n";
  EXPECT_EQ(redact(text).total(), 1u);
  EXPECT_EQ(text, "[REDACTED private key]\n\n\n\nbuild: done\n");
  // ...and inside a report quoting that tail as one JSON string.
  json report{
      {"log_tails", {{"tool/1.stdout.log", body[4] + "\n" + body[5] + "\n-----END RSA PRIVATE KEY-----\n"}}}};
  text = report.dump(2);
  EXPECT_EQ(redact(text).total(), 1u);
  json back = json::parse(text, nullptr, false);
  ASSERT_FALSE(back.is_discarded()) << text;
  for (const auto& l : body) EXPECT_EQ(text.find(l.substr(0, 20)), std::string::npos) << text;
}

TEST(SecretRedaction, OrdinaryTextIsLeftAlone) {
  std::vector<std::string> plain{
      "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      "commit 3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
      "pip install scikit-learn  # sk-learn, not a key",
      "risk-assessment-for-the-quarterly-report-draft-version",
      "class=\"sk-button-primary-large-rounded-corners-extra-wide\"",
      "id 123e4567-e89b-12d3-a456-426614174000",
      "Authorization: Bearer $GITHUB_TOKEN",
      "Authorization: Bearer short",
      "AKIAlowercasewordthatgoesonandon",
      "ghp_tooshort",
      "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
      "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----",
      "eyJust.a.sentence",
      "base64: SGVsbG8gd29ybGQsIHRoaXMgaXMgb3JkaW5hcnkgdGV4dA==",
      "diff --git a/x b/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
  };
  for (const auto& p : plain) {
    std::string text = p;
    EXPECT_EQ(redact_secrets(text).total(), 0u) << p;
    EXPECT_EQ(text, p);
  }
}

TEST(SecretRedaction, LargeInputsArePassedOnceEach) {
  // An 8 MiB patch of base64-like lines with a key in the middle and a token near the end.
  std::string filler;
  std::mt19937 rng(7);
  while (filler.size() < (4u << 20)) {
    filler += "+";
    for (int i = 0; i < 76; ++i) filler += kBase64[rng() % kBase64.size()];
    filler += "\n";
  }
  auto body = key_body(90, 40);
  std::string token = "gh" + std::string("p_") + chars(36, kAlnum, 91);
  std::string text = filler + pem("OPENSSH PRIVATE KEY", body, "+") + filler + "+echo " + token + "\n";
  size_t lines = lines_of(text).size();
  RedactionCounts c = redact(text);
  EXPECT_EQ(c[SecretKind::private_key], 1u);
  EXPECT_EQ(c[SecretKind::github_token], 1u);
  EXPECT_EQ(c.total(), 2u);
  EXPECT_EQ(lines_of(text).size(), lines);
  EXPECT_EQ(text.find(token), std::string::npos);
  EXPECT_EQ(text.substr(0, filler.size()), filler);

  // Look-alikes packed together cost one pass too: a 4 MiB run of "sk-" prefixes, many keys on one line,
  // and BEGIN markers without END.
  std::string sks;
  while (sks.size() < (4u << 20)) sks += "sk-";
  EXPECT_EQ(redact_secrets(sks).total(), 0u);
  std::string one_line;
  while (one_line.size() < (4u << 20))
    one_line += "x -----BEGIN PRIVATE KEY-----abc-----END PRIVATE KEY----- ";
  size_t keys = count_of(one_line, "-----BEGIN");
  EXPECT_EQ(redact(one_line).total(), keys);
  EXPECT_EQ(count_of(one_line, "[REDACTED private key]"), keys);
  std::string begins;
  while (begins.size() < (2u << 20)) begins += "-----BEGIN RSA PRIVATE KEY-----\n";
  EXPECT_EQ(redact(begins).total(), 1u);
}

}  // namespace
}  // namespace cp::serve
