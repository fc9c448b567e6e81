// The REST API's routing rules and path safety, and the OpenAPI document against the routes served.
#include "queue/queue_service.hpp"
#include "serve/api.hpp"
#include "serve/metrics.hpp"
#include "serve/openapi.hpp"
#include "serve/routes.hpp"
#include "serve/run_catalog.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>

namespace cp::serve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

TEST(ApiPaths, UrlDecoding) {
  EXPECT_EQ(url_decode("a%2Fb"), "a/b");
  EXPECT_EQ(url_decode("a+b"), "a+b");
  EXPECT_EQ(url_decode("a+b", true), "a b");
  EXPECT_EQ(url_decode("%"), std::nullopt);
  EXPECT_EQ(url_decode("%4"), std::nullopt);
  EXPECT_EQ(url_decode("%zz"), std::nullopt);
  EXPECT_EQ(url_decode("a%00b"), std::nullopt) << "an encoded NUL is refused";
}

TEST(ApiPaths, SafeSubpathRefusesEveryWayOut) {
  cp::test::TempDir d;
  cp::test::write_file(d / "base/ok.txt", "x");
  cp::test::write_file(d / "base/sub/deep.txt", "x");
  cp::test::write_file(d / "outside.txt", "secret");
  fs::create_symlink(d / "outside.txt", d / "base/link");
  fs::create_directory_symlink(d.path(), d / "base/dirlink");
  std::string why;
  EXPECT_TRUE(safe_subpath(d / "base", "ok.txt", why));
  EXPECT_TRUE(safe_subpath(d / "base", "sub/deep.txt", why));
  for (const char* bad : {"../outside.txt", "sub/../../outside.txt", "/etc/passwd", "link",
                          "dirlink/outside.txt", "", "sub//deep.txt", "./ok.txt", "sub\\deep.txt"}) {
    EXPECT_FALSE(safe_subpath(d / "base", bad, why)) << bad;
    EXPECT_FALSE(why.empty());
  }
  EXPECT_FALSE(safe_subpath(d / "base", "missing", why));
  EXPECT_EQ(why, "not found");
}

// OpenAPI 3.0 structure checks: the parts a client generator relies on.
void check_openapi(const json& doc) {
  ASSERT_TRUE(doc.is_object());
  EXPECT_TRUE(std::regex_match(doc.value("openapi", ""), std::regex("3\\.0\\.[0-9]+")));
  ASSERT_TRUE(doc.contains("info"));
  EXPECT_TRUE(doc["info"].contains("title"));
  EXPECT_TRUE(doc["info"].contains("version"));
  ASSERT_TRUE(doc["paths"].is_object());
  static const std::set<std::string> methods{"get",     "put",  "post",  "delete",
                                             "options", "head", "patch", "trace"};
  std::set<std::string> op_ids;
  // Every $ref resolves inside the document.
  std::function<void(const json&, const std::string&)> refs = [&](const json& j, const std::string& where) {
    if (j.is_object()) {
      if (j.contains("$ref")) {
        std::string r = j["$ref"];
        ASSERT_EQ(r.rfind("#/", 0), 0u) << where;
        EXPECT_TRUE(doc.contains(json::json_pointer(r.substr(1)))) << "unresolved " << r << " at " << where;
      }
      for (const auto& [k, v] : j.items()) refs(v, where + "/" + k);
    } else if (j.is_array()) {
      for (size_t i = 0; i < j.size(); ++i) refs(j[i], where + "/" + std::to_string(i));
    }
  };
  refs(doc, "");
  for (const auto& [path, item] : doc["paths"].items()) {
    ASSERT_EQ(path.front(), '/') << path;
    std::set<std::string> templ;
    static const std::regex param("\\{([^}]+)\\}");
    for (auto it = std::sregex_iterator(path.begin(), path.end(), param); it != std::sregex_iterator(); ++it)
      templ.insert((*it)[1]);
    for (const auto& [m, opn] : item.items()) {
      ASSERT_TRUE(methods.count(m)) << path << " has " << m;
      EXPECT_TRUE(opn.contains("responses") && !opn["responses"].empty()) << path << " " << m;
      for (const auto& [code, r] : opn["responses"].items()) {
        EXPECT_TRUE(code == "default" || std::regex_match(code, std::regex("[1-5][0-9][0-9]"))) << code;
        EXPECT_TRUE(r.contains("description") || r.contains("$ref")) << path << " " << code;
      }
      ASSERT_TRUE(opn.contains("operationId")) << path << " " << m;
      EXPECT_TRUE(op_ids.insert(opn["operationId"]).second) << "duplicate operationId " << opn["operationId"];
      std::set<std::string> declared;
      for (const auto& p : opn.value("parameters", json::array())) {
        EXPECT_TRUE(p.contains("name") && p.contains("in")) << path;
        if (p["in"] == "path") {
          EXPECT_EQ(p.value("required", false), true) << "path parameters are required: " << p.dump();
          declared.insert(p["name"]);
        }
      }
      EXPECT_EQ(declared, templ) << path << " " << m << ": every {param} declared, nothing else";
    }
  }
}

TEST(OpenApi, DocumentIsWellFormedAndListsExactlyTheServedRoutes) {
  json doc = json::parse(openapi_document(), nullptr, false);
  check_openapi(doc);
  std::set<std::pair<std::string, std::string>> documented, served;
  for (const auto& [path, item] : doc["paths"].items())
    for (const auto& [m, op] : item.items()) {
      std::string up = m;
      for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert({up, path});
    }
  for (const auto& r : Api::routes()) served.insert({r.method, r.pattern});
  EXPECT_EQ(documented, served);
  // The copy in docs/ is the one compiled in.
  EXPECT_EQ(json::parse(cp::test::read_file(fs::path(CP_SOURCE_DIR) / "docs/openapi.json")), doc);
}

// The table Api::handle dispatches on: Api::routes() is read from it, every route has a handler, and a
// path of each route is taken by that route alone among its method's (no declaration shadows another).
TEST(RouteTable, EveryRouteHasAHandlerAndTakesItsPathsAlone) {
  const auto& table = route_table();
  ASSERT_EQ(table.size(), Api::routes().size());
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < table.size(); ++i) {
    const Route& r = table[i];
    const std::string method = r.info.method, pattern = r.info.pattern;
    EXPECT_EQ(Api::routes()[i].pattern, pattern);
    EXPECT_NE(r.handler, nullptr) << method << " " << pattern;
    EXPECT_TRUE(seen.insert({method, pattern}).second) << method << " " << pattern << " is declared twice";
    const std::string sample = std::regex_replace(pattern, std::regex("\\{[^}]+\\}"), "x");
    for (const Route& other : table) {
      std::map<std::string, std::string> params;
      bool taken = match_route(other.info.pattern, sample, params);
      if (&other == &r) {
        EXPECT_TRUE(taken) << pattern << " does not match " << sample;
      } else if (method == other.info.method) {
        EXPECT_FALSE(taken) << sample << " is taken by " << pattern << " and " << other.info.pattern;
      }
    }
  }
}

TEST(OpenApi, TheChecksCatchABrokenDocument) {
  json doc = json::parse(openapi_document());
  doc["paths"]["/api/runs/{id}"]["get"]["parameters"] = json::array();
  EXPECT_NONFATAL_FAILURE(check_openapi(doc), "every {param} declared");
  doc = json::parse(openapi_document());
  doc["paths"]["/api/runs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] =
      "#/components/schemas/Nope";
  EXPECT_NONFATAL_FAILURE(check_openapi(doc), "unresolved");
}

// Findings of fuzz/fuzz_rest_request.cpp, one test each.
class ApiFuzzFindings : public ::testing::Test {
 protected:
  cp::test::TempDir root;
  TokenStore tokens;
  std::unique_ptr<RunCatalog> catalog = std::make_unique<RunCatalog>(root.path());
  std::unique_ptr<cp::queue::QueueService> queue =
      std::make_unique<cp::queue::QueueService>(root.path(), nullptr);
  Metrics metrics;
  Api api{ApiConfig{root.path(), {}, {}, true, "0", "{}", {}, {}, std::chrono::hours(8), false, false, {}},
          tokens,
          *catalog,
          *queue,
          nullptr,
          nullptr,
          metrics};
};

TEST_F(ApiFuzzFindings, APathThatIsNotUtf8GetsAJson404InsteadOfAThrow) {
  ApiRequest req;
  req.method = "GET";
  req.path =
      "\xff\xff\xff"
      "2/runs";
  ApiResponse r;
  ASSERT_NO_THROW(r = api.handle(req));
  EXPECT_EQ(r.status, 404);
  json body = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << r.body;
  EXPECT_EQ(body["error"]["code"], "no_route");
}

}  // namespace
}  // namespace cp::serve

namespace cp::serve {
namespace {

TEST_F(ApiFuzzFindings, AnUnknownOrMisspeltQueryParameterIs400NamingIt) {
  ApiRequest req;
  req.method = "GET";
  req.path = "/api/runs";
  req.query = {{"statsu", "success"}};
  ApiResponse r = api.handle(req);
  EXPECT_EQ(r.status, 400);
  json body = json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "bad_query");
  EXPECT_EQ(body["error"]["details"]["parameter"], "statsu");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("status"), std::string::npos)
      << "the message lists what the route takes";
  req.query = {{"status", "success"}};
  EXPECT_EQ(api.handle(req).status, 200) << "a declared parameter passes";
  req.path = "/api/health";
  req.query = {{"x", "1"}};
  r = api.handle(req);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("takes none"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace cp::serve

namespace cp::serve {
namespace {

TEST(SessionStore, OneTokenChurnsOnlyItsOwnSessions) {
  SessionStore store(100, 4);
  Principal viewer{"dash", Role::viewer}, admin{"root", Role::admin};
  auto admins = store.open(admin, std::chrono::seconds(60));
  ASSERT_TRUE(admins);
  std::vector<OpenedSession> v;
  for (int i = 0; i < 500; ++i) {
    auto s = store.open(viewer, std::chrono::seconds(60));
    ASSERT_TRUE(s) << "a token's newest session always fits: its oldest makes room";
    v.push_back(*s);
  }
  EXPECT_EQ(store.size(), 5u) << "four of the viewer's, one of the admin's";
  SessionStore::Lookup why;
  EXPECT_TRUE(store.find(admins->id, why)) << "another token's session survives the churn";
  EXPECT_TRUE(store.find(v.back().id, why));
  EXPECT_FALSE(store.find(v.front().id, why));
  EXPECT_EQ(why, SessionStore::Lookup::unknown);
}

}  // namespace
}  // namespace cp::serve
