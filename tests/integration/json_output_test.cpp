// Every read command's `--output json` is JSON with the keys docs/cli-json.md documents: the test reads the
// table there and runs each command on a real project with a sealed run, so the documentation cannot drift.
#include "integration/run_project.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

using namespace cp::test;
using nlohmann::json;

namespace {

struct DocumentedShape {
  std::string command;            // with placeholders
  bool json_lines = false;        // one event per line
  std::vector<std::string> keys;  // the keys every answer has
};

std::vector<DocumentedShape> documented_shapes() {
  std::vector<DocumentedShape> out;
  std::istringstream doc(read_file(fs::path(CP_SOURCE_DIR) / "docs/cli-json.md"));
  static const std::regex row(R"(^\| `([^`]+)` \| ([^|]+) \|)");
  for (std::string line; std::getline(doc, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    DocumentedShape s;
    s.command = m[1];
    std::string keys = m[2];
    if (keys.rfind("JSON Lines: ", 0) == 0) {
      s.json_lines = true;
      keys = keys.substr(12);
    }
    std::istringstream k(keys);
    for (std::string key; std::getline(k, key, ',');) {
      key.erase(0, key.find_first_not_of(' '));
      key.erase(key.find_last_not_of(' ') + 1);
      if (!key.empty() && key.back() != '?') s.keys.push_back(key);
    }
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> words(std::string command, const std::map<std::string, std::string>& values) {
  std::vector<std::string> out;
  std::istringstream in(command);
  for (std::string w; in >> w;) out.push_back(values.count(w) ? values.at(w) : w);
  return out;
}

}  // namespace

TEST(JsonOutput, EveryReadCommandPrintsTheDocumentedKeys) {
  RunProject p;
  ASSERT_EQ(cp::test::run({CP_HOST_BIN, "init", "--force", p.dir.path().string()}).exit_code, 0);
  auto r = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(r.ran.exit_code, 0) << r.ran.err;
  const fs::path tokens = p.dir / "tokens.json";
  ASSERT_EQ(host({"tokens", "add", "--file", tokens.string(), "--id", "v", "--role", "viewer"}).exit_code, 0);
  const std::map<std::string, std::string> values{{"RUN", r.manifest["run_id"]},
                                                  {"PLUGIN", "diff_scope"},
                                                  {"PROBE", "toolchain"},
                                                  {"ROLE", "WORKER"},
                                                  {"CONTRACT", "contracts/example.json"},
                                                  {"SCHEMA", "task_contract"},
                                                  {"TOKENS", tokens.string()}};
  const auto shapes = documented_shapes();
  ASSERT_GT(shapes.size(), 30u) << "the table in docs/cli-json.md was not read";
  for (const auto& shape : shapes) {
    std::vector<std::string> args{"--root", p.dir.path().string()};
    for (auto& w : words(shape.command, values)) args.push_back(w);
    args.insert(args.end(), {"--output", "json"});
    if (shape.command.rfind("runs follow", 0) == 0) args.insert(args.end(), {"--interval", "20"});
    Ran ran = host(args, p.dir.path());
    EXPECT_EQ(ran.exit_code, 0) << shape.command << ": " << ran.err;
    std::vector<json> docs;
    if (shape.json_lines) {
      std::istringstream lines(ran.out);
      for (std::string l; std::getline(lines, l);) docs.push_back(json::parse(l, nullptr, false));
      EXPECT_FALSE(docs.empty()) << shape.command;
    } else {
      docs.push_back(json::parse(ran.out, nullptr, false));
    }
    for (const auto& d : docs) {
      ASSERT_TRUE(d.is_object()) << shape.command << " printed no JSON object: " << ran.out.substr(0, 300);
      for (const auto& key : shape.keys) EXPECT_TRUE(d.contains(key)) << shape.command << " lacks " << key;
    }
  }
}
