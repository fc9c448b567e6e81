#include "serve/ui_assets.hpp"

#include "core/sha256.hpp"
#include "serve/api_answers.hpp"
#include "serve/embedded_file.hpp"
#include "store/atomic_file.hpp"

#include <stdexcept>

namespace cp::serve {

namespace fs = std::filesystem;

namespace {

// The page a binary built without its dashboard answers: what is missing and how to get it.
constexpr const char* kNoDashboard =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>cp-host</title></head><body>"
    "<main><h1>cp-host</h1><p>This cp-host was built without its dashboard (npm was not found when it was "
    "built). The API answers under <a href=\"/api/openapi.json\">/api</a>. Install nodejs and npm and "
    "rebuild, or start <code>cp-host serve --ui-dir web/dist</code> after <code>npm run build</code> in "
    "<code>web/</code>.</p></main></body></html>";

std::string content_type_of(const std::string& path) {
  static const std::map<std::string, std::string> types = {{".html", "text/html; charset=utf-8"},
                                                           {".js", "text/javascript; charset=utf-8"},
                                                           {".css", "text/css; charset=utf-8"},
                                                           {".svg", "image/svg+xml"},
                                                           {".json", "application/json"},
                                                           {".png", "image/png"},
                                                           {".woff2", "font/woff2"},
                                                           {".ico", "image/x-icon"},
                                                           {".txt", "text/plain; charset=utf-8"},
                                                           {".webmanifest", "application/manifest+json"}};
  auto dot = path.rfind('.');
  auto it = dot == std::string::npos ? types.end() : types.find(path.substr(dot));
  return it == types.end() ? "application/octet-stream" : it->second;
}

// Hashed asset names (app-3F2A9C1B.js) never change content, so browsers may keep them for a year;
// index.html names the current ones and is checked each time.
bool immutable(const std::string& path) {
  return path.rfind("/assets/", 0) == 0;
}

std::string etag_of(std::string_view body) {
  return "\"" + core::sha256_hex(body).substr(0, 32) + "\"";
}

bool accepts_gzip(const ApiRequest& req) {
  auto it = req.headers.find("accept-encoding");
  return it != req.headers.end() && it->second.find("gzip") != std::string::npos;
}

// A dashboard path as a relative file name, or nullopt for one that could leave the folder.
std::optional<std::string> clean(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos) return std::nullopt;
  std::string rel = path.substr(1);
  if (rel.empty()) return std::string("index.html");
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    std::string seg = rel.substr(start, end == std::string::npos ? std::string::npos : end - start);
    // A leading dot also keeps hidden files (.git, .env) of a --ui-dir folder unserved.
    if (seg.empty() || seg.front() == '.' || seg.find('\\') != std::string::npos) return std::nullopt;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return rel;
}

// A regular file under `dir`, opened one component at a time and none of them followed if it is a link: a
// link planted in the folder, or a folder swapped for one while it is read, serves nothing from elsewhere.
std::optional<std::string> read_under(const fs::path& dir, const std::string& rel) {
  auto f = store::read_regular_file_beneath(dir, rel, 64u << 20);
  if (f.status != store::FileRead::Status::ok) return std::nullopt;
  return std::move(f.bytes);
}

void set_security_headers(ApiResponse& r) {
  // The dashboard loads only its own files and talks only to this server.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                         "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                         "frame-ancestors 'none'; form-action 'self'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
}

}  // namespace

std::shared_ptr<const UiAssets> UiAssets::embedded() {
  auto ui = std::make_shared<UiAssets>();
  for (const auto& f : embedded_ui()) {
    std::string p(f.path);
    if (p.size() > 3 && p.compare(p.size() - 3, 3, ".gz") == 0) continue;
    ui->files_[p].body = std::string(f.bytes);
  }
  for (const auto& f : embedded_ui()) {
    std::string p(f.path);
    if (p.size() <= 3 || p.compare(p.size() - 3, 3, ".gz") != 0) continue;
    auto it = ui->files_.find(p.substr(0, p.size() - 3));
    if (it != ui->files_.end()) it->second.gzip = std::string(f.bytes);
  }
  if (ui->files_.empty()) ui->files_["/index.html"].body = kNoDashboard;
  for (auto& [p, f] : ui->files_) f.etag = etag_of(f.body);
  return ui;
}

std::shared_ptr<const UiAssets> UiAssets::from_dir(const fs::path& dir) {
  std::error_code ec;
  fs::path real = fs::canonical(dir, ec);
  if (ec || !fs::is_regular_file(real / "index.html"))
    throw std::runtime_error("--ui-dir " + dir.string() +
                             " holds no index.html; build the dashboard first (npm run build in web/)");
  auto ui = std::make_shared<UiAssets>();
  ui->dir_ = real;
  return ui;
}

bool UiAssets::owns(const std::string& path) {
  return path != "/api" && path.rfind("/api/", 0) != 0 && path != "/metrics";
}

std::optional<UiAssets::File> UiAssets::find(const std::string& path) const {
  auto rel = clean(path);
  if (!rel) return std::nullopt;
  if (dir_.empty()) {
    auto it = files_.find("/" + *rel);
    if (it == files_.end()) return std::nullopt;
    return it->second;
  }
  auto body = read_under(dir_, *rel);
  if (!body) return std::nullopt;
  File f;
  f.body = std::move(*body);
  if (auto gz = read_under(dir_, *rel + ".gz")) f.gzip = std::move(*gz);
  f.etag = etag_of(f.body);
  return f;
}

ApiResponse UiAssets::answer(const ApiRequest& req) const {
  ApiResponse r;
  r.route = "ui";
  if (req.method != "GET" && req.method != "HEAD") {
    r = error(
        405, "method_not_allowed",
        req.method + " is not allowed on the dashboard's pages (" + req.path + "); the API is under /api");
    r.headers.emplace_back("Allow", "GET, HEAD");
    r.route = "ui";
    set_security_headers(r);
    return r;
  }
  std::string path = req.path == "/" ? "/index.html" : req.path;
  auto file = find(path);
  // A page of the dashboard's router (/runs/abc): its last segment names no type of file the dashboard
  // serves. Not "has no dot": run ids may hold dots (a task "fix.greeting" makes /runs/fix.greeting-2026...).
  if (!file && content_type_of(path) == "application/octet-stream" && clean(path)) {
    path = "/index.html";
    file = find(path);
  }
  if (!file) {
    r = error(404, "not_found", "no dashboard file " + req.path);
    r.route = "ui";
    set_security_headers(r);
    return r;
  }
  set_security_headers(r);
  r.headers.emplace_back("ETag", file->etag);
  r.headers.emplace_back("Cache-Control",
                         immutable(path) ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.emplace_back("Vary", "Accept-Encoding");
  r.content_type = content_type_of(path);
  auto inm = req.headers.find("if-none-match");
  if (inm != req.headers.end() && inm->second.find(file->etag) != std::string::npos) {
    r.status = 304;
    return r;
  }
  if (!file->gzip.empty() && accepts_gzip(req)) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = std::move(file->gzip);
  } else {
    r.body = std::move(file->body);
  }
  return r;
}

}  // namespace cp::serve
