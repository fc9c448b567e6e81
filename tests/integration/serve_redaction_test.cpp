// Secrets in a run's evidence, through a real `cp-host serve`: a run copies a private key into its worktree
// (so diff.patch holds it) and prints a GitHub token (so its log, its events and its incident pack hold
// it). Viewers, operators, admins by default and anonymous --open-reads get all of it redacted; only an
// admin asking raw=1 gets the bytes; the bundle on disk is never changed.
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>

#include <random>

namespace cp::test {
namespace {

// Put together at run time, so the source holds nothing a secret scanner would flag.
std::string random_chars(size_t n, unsigned seed) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::mt19937 rng(seed);
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}

size_t lines_in(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

struct ServeRedaction : ::testing::Test {
  RunProject p;
  std::vector<std::string> key_body;
  std::string token;
  std::string viewer, op, admin;
  fs::path bundle;
  std::string rid, log_rel;
  std::map<std::string, std::string> on_disk;  // bundle-relative path -> bytes before any request
  std::unique_ptr<ServeProcess> serve;

  void SetUp() override {
    std::string key = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    for (unsigned i = 0; i < 6; ++i) {
      key_body.push_back(random_chars(70, i + 1));
      key += key_body.back() + "\n";
    }
    key += "-----END OPENSSH PRIVATE KEY-----\n";
    p.commit("keys/deploy_key", key);
    token = "gh" + std::string("p_") + random_chars(36, 42);
    for (auto& c : token)
      if (c == '+' || c == '/') c = 'x';

    // The run copies the key where diff_scope does not allow it (so it is denied, as in the report that
    // started this) and prints the token.
    auto r = p.run(
        p.contract({"mkdir leak", "cp keys/deploy_key leak/id_ed25519", "echo deploying with " + token}));
    ASSERT_FALSE(r.bundle.empty()) << r.ran.out << r.ran.err;
    ASSERT_EQ(r.manifest["verdict"], "denied") << r.manifest.dump(2);
    bundle = r.bundle;
    rid = r.manifest["run_id"];
    for (const auto& e : fs::directory_iterator(bundle / "artifacts/tool"))
      if (read_file(e.path()).find(token) != std::string::npos)
        log_rel = "tool/" + e.path().filename().string();
    ASSERT_FALSE(log_rel.empty()) << "no tool log holds the token";
    for (const char* f : {"artifacts/diff.patch", "reports/incident_pack.json", "events.jsonl"})
      on_disk[f] = read_file(bundle / f);
    on_disk["artifacts/" + log_rel] = read_file(bundle / "artifacts" / log_rel);
    // The bad thing is there on disk: the patch holds the key, the log, events and incident pack the token.
    for (const auto& l : key_body)
      ASSERT_NE(on_disk["artifacts/diff.patch"].find("+" + l), std::string::npos);
    for (const char* f : {"reports/incident_pack.json", "events.jsonl"})
      ASSERT_NE(on_disk[f].find(token), std::string::npos) << f;

    viewer = add_token(p, "dash", "viewer");
    op = add_token(p, "ops", "operator");
    admin = add_token(p, "root", "admin");
    start({});
  }

  void start(std::vector<std::string> extra) {
    if (serve) serve->stop();
    extra.insert(extra.end(), {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"});
    serve = std::make_unique<ServeProcess>(p, extra);
    ASSERT_NE(serve->port(), 0) << serve->output();
  }

  HttpResponse get(const std::string& target, const std::string& token_ = "") {
    return http(serve->port(), "GET", target,
                token_.empty() ? std::map<std::string, std::string>{} : bearer(token_));
  }

  // Nothing of the key nor the token in `body`.
  void expect_clean(const std::string& body, const std::string& what) {
    EXPECT_EQ(body.find(token), std::string::npos) << what << " leaks the token";
    for (const auto& l : key_body) EXPECT_EQ(body.find(l), std::string::npos) << what << " leaks the key";
  }

  void expect_disk_unchanged() {
    for (const auto& [f, bytes] : on_disk) EXPECT_EQ(read_file(bundle / f), bytes) << f << " changed on disk";
  }
};

TEST_F(ServeRedaction, ServeGivesEveryReaderTheEvidenceWithoutItsSecrets) {
  const std::string& patch = on_disk["artifacts/diff.patch"];
  for (const std::string* who : {&viewer, &op, &admin}) {
    auto d = get("/api/runs/" + rid + "/artifacts/diff.patch", *who);
    ASSERT_EQ(d.status, 200) << d.body;
    expect_clean(d.body, "diff.patch");
    EXPECT_NE(d.body.find("+++ b/leak/id_ed25519\n@@ -0,0 +1,8 @@\n+[REDACTED private key]\n+\n"),
              std::string::npos)
        << d.body;
    EXPECT_EQ(lines_in(d.body), lines_in(patch)) << "the patch keeps its lines";
    EXPECT_EQ(d.headers["x-cp-redacted"], "1");
    EXPECT_EQ(d.headers["x-cp-redacted-kinds"], "private_key=1");
    EXPECT_EQ(d.headers.count("x-cp-raw"), 0u);
    EXPECT_EQ(d.headers["content-type"].rfind("text/plain", 0), 0u);

    auto l = get("/api/runs/" + rid + "/artifacts/" + log_rel, *who);
    ASSERT_EQ(l.status, 200) << l.body;
    EXPECT_EQ(l.body, "deploying with [REDACTED github token]\n");
    EXPECT_EQ(l.headers["x-cp-redacted"], "1");
    EXPECT_EQ(l.headers["x-cp-redacted-kinds"], "github_token=1");
  }

  // The incident pack quotes the log's tail: still valid JSON, without the token.
  auto inc = get("/api/runs/" + rid + "/reports/incident_pack", viewer);
  ASSERT_EQ(inc.status, 200) << inc.body;
  expect_clean(inc.body, "incident_pack");
  json pack = json::parse(inc.body, nullptr, false);
  ASSERT_TRUE(pack.is_object()) << inc.body;
  EXPECT_EQ(pack["log_tails"]["artifacts/" + log_rel], "deploying with [REDACTED github token]\n");
  // One redaction per copy of the token the pack holds (the log tail, the command and its argv).
  const std::string& inc_disk = on_disk["reports/incident_pack.json"];
  size_t copies = 0;
  for (size_t at = inc_disk.find(token); at != std::string::npos; at = inc_disk.find(token, at + 1)) ++copies;
  EXPECT_EQ(inc.headers["x-cp-redacted"], std::to_string(copies)) << inc_disk;
  EXPECT_EQ(inc.headers["x-cp-redacted-kinds"], "github_token=" + std::to_string(copies));
  auto clean_report = get("/api/runs/" + rid + "/reports/gate_diff_scope", viewer);
  ASSERT_EQ(clean_report.status, 200);
  EXPECT_EQ(clean_report.headers["x-cp-redacted"], "0");
  EXPECT_EQ(clean_report.body, read_file(bundle / "reports/gate_diff_scope.json")) << "nothing to redact";

  // Events carry the command line, token included.
  auto ev = get("/api/runs/" + rid + "/events?limit=5000", viewer);
  ASSERT_EQ(ev.status, 200);
  expect_clean(ev.body, "events");
  EXPECT_NE(ev.body.find("echo deploying with [REDACTED github token]"), std::string::npos) << ev.body;
  EXPECT_NE(ev.headers["x-cp-redacted"], "0");
  auto sse = read_sse(serve->port(), "/api/runs/" + rid + "/events/stream", bearer(viewer), 10000,
                      std::chrono::seconds(20));
  ASSERT_EQ(sse.status, 200);
  EXPECT_TRUE(sse.ended);
  EXPECT_EQ(sse.events.size(), lines_in(on_disk["events.jsonl"]));
  bool marked = false;
  for (const auto& e : sse.events) {
    expect_clean(e.data, "event " + e.id);
    EXPECT_TRUE(json::parse(e.data, nullptr, false).is_object()) << e.data;
    marked = marked || e.data.find("[REDACTED github token]") != std::string::npos;
  }
  EXPECT_TRUE(marked);

  // The run's own pages.
  for (const std::string& path : std::vector<std::string>{"/api/runs/" + rid, "/api/runs"}) {
    auto r = get(path, viewer);
    ASSERT_EQ(r.status, 200);
    expect_clean(r.body, path);
  }
  expect_disk_unchanged();
}

TEST_F(ServeRedaction, OnlyAnAdminAskingRawGetsTheBytes) {
  for (const std::string& rel : std::vector<std::string>{"artifacts/diff.patch", "artifacts/" + log_rel}) {
    auto r = get("/api/runs/" + rid + "/" + rel + "?raw=1", admin);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, on_disk[rel]) << rel;
    EXPECT_EQ(r.headers["x-cp-raw"], "1");
    EXPECT_EQ(r.headers["cache-control"], "no-store");
    EXPECT_EQ(r.headers.count("x-cp-redacted"), 0u);
  }
  auto inc = get("/api/runs/" + rid + "/reports/incident_pack?raw=1", admin);
  ASSERT_EQ(inc.status, 200);
  EXPECT_EQ(inc.body, on_disk["reports/incident_pack.json"]);
  auto ev = get("/api/runs/" + rid + "/events?raw=1&limit=5000", admin);
  ASSERT_EQ(ev.status, 200);
  EXPECT_NE(ev.body.find(token), std::string::npos);
  auto sse = read_sse(serve->port(), "/api/runs/" + rid + "/events/stream?raw=1", bearer(admin), 10000,
                      std::chrono::seconds(20));
  ASSERT_EQ(sse.status, 200);
  std::string lines;
  for (const auto& e : sse.events) lines += e.data + "\n";
  EXPECT_EQ(lines, on_disk["events.jsonl"]) << "raw events are the log's lines as written";
  // raw=0 is the default view.
  EXPECT_EQ(get("/api/runs/" + rid + "/artifacts/diff.patch?raw=0", admin).headers["x-cp-redacted"], "1");

  // Anyone else asking raw is refused, and says why.
  for (const std::string* who : {&viewer, &op}) {
    for (const std::string& target :
         {"/api/runs/" + rid + "/artifacts/diff.patch?raw=1",
          "/api/runs/" + rid + "/reports/incident_pack?raw=1", "/api/runs/" + rid + "/events?raw=1",
          "/api/runs/" + rid + "/events/stream?raw=1"}) {
      auto r = get(target, *who);
      EXPECT_EQ(r.status, 403) << target;
      json err = json::parse(r.body, nullptr, false);
      ASSERT_TRUE(err.is_object()) << r.body;
      EXPECT_EQ(err["error"]["code"], "raw_needs_admin");
      EXPECT_NE(err["error"]["message"].get<std::string>().find("needs an admin token"), std::string::npos);
      expect_clean(r.body, target);
    }
  }
  EXPECT_EQ(get("/api/runs/" + rid + "/artifacts/diff.patch?raw=yes", admin).status, 400);

  // Who read the raw bytes is on record.
  serve->stop();
  std::string log = read_file(p.dir / ".runtime-cache/logs/access/access.jsonl");
  size_t raw_reads = 0;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    json e = json::parse(line);
    if (e["fields"].value("raw", false)) {
      ++raw_reads;
      EXPECT_EQ(e["fields"]["token_id"], "root");
    }
  }
  EXPECT_EQ(raw_reads, 5u);
  expect_disk_unchanged();
}

TEST_F(ServeRedaction, BinaryArtifactsAndAnonymousReads) {
  // A binary artifact is scanned as it is: served when clean, refused when it holds a secret.
  std::string clean("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  std::string dirty = std::string("\0\x01\x02 ", 4) + token + std::string("\0", 1);
  write_file(bundle / "artifacts/scratch/clean.bin", clean);
  write_file(bundle / "artifacts/scratch/dirty.bin", dirty);
  auto c = get("/api/runs/" + rid + "/artifacts/scratch/clean.bin", viewer);
  ASSERT_EQ(c.status, 200);
  EXPECT_EQ(c.body, clean);
  EXPECT_EQ(c.headers["x-cp-redacted"], "0");
  auto d = get("/api/runs/" + rid + "/artifacts/scratch/dirty.bin", viewer);
  EXPECT_EQ(d.status, 403);
  EXPECT_EQ(json::parse(d.body)["error"]["code"], "binary_with_secrets");
  expect_clean(d.body, "dirty.bin refusal");
  auto raw = get("/api/runs/" + rid + "/artifacts/scratch/dirty.bin?raw=1", admin);
  ASSERT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, dirty);

  // Anonymous reads (--open-reads) get the redacted view; raw needs a token.
  start({"--open-reads"});
  auto anon = get("/api/runs/" + rid + "/artifacts/diff.patch");
  ASSERT_EQ(anon.status, 200) << anon.body;
  expect_clean(anon.body, "anonymous diff.patch");
  EXPECT_EQ(anon.headers["x-cp-redacted"], "1");
  auto anon_raw = get("/api/runs/" + rid + "/artifacts/diff.patch?raw=1");
  EXPECT_EQ(anon_raw.status, 401);
  EXPECT_NE(anon_raw.headers["www-authenticate"].find("Bearer"), std::string::npos);
  expect_clean(anon_raw.body, "anonymous raw refusal");
  expect_disk_unchanged();
}

}  // namespace
}  // namespace cp::test
