// What the browser runner tests share: a project whose medium pack lets the run's chromium reach the
// test servers' loopback ports (network denied otherwise), a contract of browser tasks, the chromium
// processes a run left alive, and a PNG reader that tells a real picture from a blank one.
#pragma once

#include "integration/page_server.hpp"
#include "integration/run_project.hpp"

#include <zlib.h>

namespace cp::test {

struct BrowserProject : RunProject {
  // `ports`: the loopback ports the run's processes may connect to (Landlock filters by port).
  explicit BrowserProject(const std::vector<uint16_t>& ports = {}) {
    fs::path pack = dir / "packs/medium.json";
    json p = json::parse(read_file(pack));
    p["sandbox"]["connect_ports"] = ports;
    write_file(pack, p.dump(2));
  }

  fs::path runs_dir() const { return dir / ".runtime-cache/cortexpilot/runs"; }

  json browser_contract(const json& browser_tasks) const {
    json c = contract({});
    c["task_id"] = "browse";
    c["acceptance_tests"] = json::array({{{"name", "noop"}, {"cmd", "true"}}});
    c["runtime_options"] = {{"runner", "browser"}, {"pack", "medium"}, {"browser_tasks", browser_tasks}};
    return c;
  }
};

// pid:cmdline of every live process whose command line names chromium and whose environment carries
// CP_RUN_ID=<run_id> (every process a run starts carries it, chromium's children included); with an
// empty run id, every chromium at all.
inline std::vector<std::string> chromium_of_run(const std::string& run_id) {
  std::vector<std::string> found;
  for_each_live_process([&](const fs::path& proc) {
    std::string cmd = proc_file(proc, "cmdline");
    if (cmd.find("chromium") == std::string::npos) return;
    if (!run_id.empty() && proc_file(proc, "environ").find("CP_RUN_ID=" + run_id) == std::string::npos)
      return;
    for (auto& ch : cmd)
      if (ch == '\0') ch = ' ';
    found.push_back(proc.filename().string() + ": " + cmd.substr(0, 2000));
  });
  return found;
}

struct PngInfo {
  bool valid = false;
  uint32_t width = 0, height = 0;
  size_t distinct_pixels = 0;  // distinct RGB values seen (capped at 1000)
};

// Decodes an 8-bit RGB or RGBA, non-interlaced PNG far enough to count its distinct colours.
inline PngInfo read_png(const std::string& bytes) {
  PngInfo info;
  if (bytes.size() < 33 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return info;
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  info.width = be32(16);
  info.height = be32(20);
  int depth = uint8_t(bytes[24]), colour = uint8_t(bytes[25]), interlace = uint8_t(bytes[28]);
  if (depth != 8 || (colour != 2 && colour != 6) || interlace != 0) return info;
  size_t bpp = colour == 6 ? 4 : 3;
  std::string idat;
  for (size_t at = 8; at + 8 <= bytes.size();) {
    uint32_t len = be32(at);
    std::string type = bytes.substr(at + 4, 4);
    if (type == "IDAT") idat += bytes.substr(at + 8, len);
    at += 12 + len;
  }
  size_t stride = info.width * bpp;
  std::string raw((stride + 1) * info.height, '\0');
  uLongf out_len = raw.size();
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &out_len, reinterpret_cast<const Bytef*>(idat.data()),
                 idat.size()) != Z_OK ||
      out_len != raw.size())
    return info;
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  std::set<uint32_t> colours;
  for (uint32_t y = 0; y < info.height; ++y) {
    const uint8_t* row = reinterpret_cast<const uint8_t*>(raw.data()) + y * (stride + 1);
    uint8_t filter = row[0];
    for (size_t x = 0; x < stride; ++x) {
      int a = x >= bpp ? cur[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
      int v = row[1 + x];
      switch (filter) {
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) / 2;
          break;
        case 4: {
          int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          v += (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
          break;
        }
        default:
          break;
      }
      cur[x] = static_cast<uint8_t>(v);
    }
    for (size_t x = 0; x + 2 < stride && colours.size() < 1000; x += bpp)
      colours.insert((uint32_t(cur[x]) << 16) | (uint32_t(cur[x + 1]) << 8) | cur[x + 2]);
    prev = cur;
  }
  info.distinct_pixels = colours.size();
  info.valid = true;
  return info;
}

}  // namespace cp::test
