#include "contract/role_config.hpp"

#include "core/sha256.hpp"
#include "store/atomic_file.hpp"

#include <system_error>

namespace cp::contract {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF): what a prompt must be, since
// it goes into JSON (the compiled contract) and onto an agent's command line.
bool well_formed_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t more;
    unsigned long cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c >> 5) == 0x6) {
      more = 1;
      cp = c & 0x1F;
    } else if ((c >> 4) == 0xE) {
      more = 2;
      cp = c & 0x0F;
    } else if ((c >> 3) == 0x1E) {
      more = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= more) return false;
    for (size_t k = 1; k <= more; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static const unsigned long least[] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[more] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += more + 1;
  }
  return true;
}

}  // namespace

fs::path role_config_file(const fs::path& root) {
  return root / kRoleConfigPath;
}

std::string prompt_ref_problem(const std::string& ref) {
  if (ref.empty()) return "it is empty";
  if (ref.size() > 256) return "it is longer than 256 bytes";
  if (ref.find('\0') != std::string::npos) return "it holds a NUL byte";
  if (ref.find('\\') != std::string::npos) return "it holds a backslash (use '/')";
  if (ref.front() == '/') return "it is an absolute path";
  if (ref.rfind("policies/", 0) != 0) return "it is not under policies/";
  size_t start = 0;
  while (start <= ref.size()) {
    size_t end = ref.find('/', start);
    std::string seg = ref.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (seg.empty()) return "it has an empty segment ('//' or a trailing '/')";
    if (seg == "." || seg == "..") return "it has a '" + seg + "' segment";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

std::string prompt_text_problem(const std::string& text) {
  if (text.size() > kMaxRolePromptBytes)
    return "it is " + std::to_string(text.size()) + " bytes; a prompt may have at most " +
           std::to_string(kMaxRolePromptBytes);
  if (text.find('\0') != std::string::npos) return "it holds a NUL byte";
  if (!well_formed_utf8(text)) return "it is not UTF-8";
  return "";
}

std::optional<RolePrompt> read_role_prompt(const fs::path& root, const std::string& ref, std::string& why) {
  if (std::string p = prompt_ref_problem(ref); !p.empty()) {
    why = "prompt_ref '" + ref + "' is refused: " + p;
    return std::nullopt;
  }
  // The root is the operator's own folder and may be reached through a link; nothing below it may be.
  std::error_code ec;
  fs::path base = fs::canonical(root.empty() ? fs::path(".") : root, ec);
  if (ec) {
    why = "the project root " + root.string() + " cannot be resolved: " + ec.message();
    return std::nullopt;
  }
  store::FileRead r = store::read_regular_file_beneath(base, ref, kMaxRolePromptBytes);
  if (r.status == store::FileRead::Status::too_large) {
    why = "prompt " + ref + " is larger than " + std::to_string(kMaxRolePromptBytes) + " bytes";
    return std::nullopt;
  }
  if (r.status != store::FileRead::Status::ok) {
    why = "prompt " + ref +
          " is not a readable regular file under the project root (missing, or a symbolic link on the way)";
    return std::nullopt;
  }
  if (std::string p = prompt_text_problem(r.bytes); !p.empty()) {
    why = "prompt " + ref + " is refused: " + p;
    return std::nullopt;
  }
  std::string sha = core::sha256_hex(r.bytes);
  return RolePrompt{ref, std::move(r.bytes), sha};
}

json role_config_entry(const json& config, const std::string& role) {
  if (!config.is_object() || !config.contains("roles") || !config["roles"].is_object()) return nullptr;
  auto it = config["roles"].find(role);
  if (it == config["roles"].end() || !it->is_object()) return nullptr;
  return *it;
}

std::optional<std::vector<std::string>> allowed_runners_of(const json& config, const std::string& role) {
  json e = role_config_entry(config, role);
  if (!e.is_object() || !e.contains("allowed_runners") || !e["allowed_runners"].is_array())
    return std::nullopt;
  std::vector<std::string> out;
  for (const auto& r : e["allowed_runners"])
    if (r.is_string()) out.push_back(r.get<std::string>());
  return out;
}

fs::path role_config_root(const fs::path& file, const fs::path& fallback) {
  fs::path dir = file.parent_path();
  if (dir.filename() != "policies") return fallback;
  fs::path root = dir.parent_path();
  return root.empty() ? fs::path(".") : root;
}

}  // namespace cp::contract
