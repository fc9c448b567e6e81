// The dashboard's files as serve answers them: content types and caching, ETags, gzip, the router's pages,
// and a --ui-dir folder that cannot be made to serve anything outside it.
#include "serve/ui_assets.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace {

using cp::serve::ApiRequest;
using cp::serve::ApiResponse;
using cp::serve::UiAssets;
namespace fs = std::filesystem;

ApiResponse get(const UiAssets& ui, const std::string& path,
                std::map<std::string, std::string> headers = {}) {
  ApiRequest r;
  r.method = "GET";
  r.path = path;
  r.headers = std::move(headers);
  return ui.answer(r);
}

std::string header(const ApiResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

struct UiDir : ::testing::Test {
  cp::test::TempDir tmp;
  fs::path dir = tmp.path() / "dist";
  void SetUp() override {
    cp::test::write_file(dir / "index.html", "<!doctype html><title>t</title>");
    cp::test::write_file(dir / "assets/app-ABC.js", "console.log(1)");
    cp::test::write_file(tmp.path() / "secret.txt", "top secret");
  }
};

TEST_F(UiDir, AnswersFilesWithTypesCachingAndEtags) {
  auto ui = UiAssets::from_dir(dir);
  auto js = get(*ui, "/assets/app-ABC.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, "console.log(1)");
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(js, "Cache-Control"), "public, max-age=31536000, immutable");
  auto again = get(*ui, "/assets/app-ABC.js", {{"if-none-match", header(js, "ETag")}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  auto index = get(*ui, "/");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(index, "Cache-Control"), "no-cache");
  EXPECT_NE(header(index, "Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  // A page of the router gets index.html; a missing file with an extension is 404.
  EXPECT_EQ(get(*ui, "/runs/some-run").body, index.body);
  EXPECT_EQ(get(*ui, "/runs/fix.greeting-20261125T100000Z-a1b2c3").body, index.body)
      << "a task id with a dot";
  EXPECT_EQ(get(*ui, "/assets/nothing.js").status, 404);
}

TEST_F(UiDir, NeverServesWhatLiesOutsideTheFolder) {
  fs::create_symlink(tmp.path() / "secret.txt", dir / "assets/link.js");
  fs::create_symlink(tmp.path(), dir / "up");
  ASSERT_EQ(::mkfifo((dir / "assets/pipe.js").c_str(), 0600), 0);  // would block a reader
  cp::test::write_file(dir / ".env", "top secret");                // hidden files stay unserved
  cp::test::write_file(dir / ".git/config", "top secret");
  auto ui = UiAssets::from_dir(dir);
  for (const char* p :
       {"/assets/link.js", "/up/secret.txt", "/../secret.txt", "/assets/../../secret.txt", "/./index.html",
        "//secret.txt", "/assets/pipe.js", "/assets\\..\\..\\secret.txt", "/.env", "/.git/config", "/.git"}) {
    auto r = get(*ui, p);
    EXPECT_EQ(r.body.find("top secret"), std::string::npos) << p;
    EXPECT_NE(r.status, 200) << p;
  }
  ApiRequest post;
  post.method = "POST";
  post.path = "/index.html";
  auto refused = ui->answer(post);
  EXPECT_EQ(refused.status, 405);
  // Refusals carry the same policy as the pages: never sniffed, never framed.
  EXPECT_EQ(header(refused, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(get(*ui, "/nothing.js"), "X-Content-Type-Options"), "nosniff");
}

TEST(UiAssets, AFolderWithoutIndexIsRefusedAtStart) {
  cp::test::TempDir tmp;
  EXPECT_THROW(UiAssets::from_dir(tmp.path()), std::runtime_error);
  EXPECT_THROW(UiAssets::from_dir(tmp.path() / "missing"), std::runtime_error);
}

TEST(UiAssets, TheBuiltInDashboardIsServedGzippedToBrowsersThatTakeIt) {
  auto ui = UiAssets::embedded();
  auto plain = get(*ui, "/");
  ASSERT_EQ(plain.status, 200);
  EXPECT_NE(plain.body.find("<html"), std::string::npos);
  if (!ui->built_in() || plain.body.find("/assets/") == std::string::npos)
    GTEST_SKIP() << "built without npm";
  auto zipped = get(*ui, "/", {{"accept-encoding", "gzip, deflate"}});
  EXPECT_EQ(header(zipped, "Content-Encoding"), "gzip");
  EXPECT_EQ(zipped.body.substr(0, 2), std::string("\x1f\x8b", 2));
  EXPECT_EQ(header(zipped, "ETag"), header(plain, "ETag"));  // one ETag per content, however it is sent
  EXPECT_TRUE(UiAssets::owns("/runs"));
  EXPECT_FALSE(UiAssets::owns("/api/runs"));
  EXPECT_FALSE(UiAssets::owns("/api"));
  EXPECT_FALSE(UiAssets::owns("/metrics"));
}

}  // namespace
