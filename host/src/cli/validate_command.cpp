// `cp-host validate [PATHS...]`: schema + cross-reference checks for CI.
#include "chain/chain_spec.hpp"
#include "cli/colour.hpp"
#include "cli/commands.hpp"
#include "cli/project_root.hpp"
#include "cli/shared_answers.hpp"
#include "contract/validation.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace cp::cli {

nlohmann::json validation_report_json(const contract::ValidationReport& r) {
  nlohmann::json out{{"ok", r.ok()},
                     {"files_checked", r.files_checked},
                     {"files_invalid", r.files_invalid},
                     {"error_count", r.diagnostics.size()},
                     {"duration_ms", r.duration.count()},
                     {"diagnostics", nlohmann::json::array()}};
  for (const auto& d : r.diagnostics)
    out["diagnostics"].push_back({{"file", d.file},
                                  {"line", d.line},
                                  {"pointer", d.pointer},
                                  {"rule", d.rule},
                                  {"message", d.message},
                                  {"value", d.value},
                                  {"expected", d.expected},
                                  {"schema", d.schema}});
  return out;
}

namespace {

// GitHub workflow command escaping: data and property values differ.
std::string gh_data(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '%')
      o += "%25";
    else if (c == '\r')
      o += "%0D";
    else if (c == '\n')
      o += "%0A";
    else
      o += c;
  }
  return o;
}
std::string gh_prop(const std::string& s) {
  std::string o;
  for (char c : gh_data(s)) {
    if (c == ':')
      o += "%3A";
    else if (c == ',')
      o += "%2C";
    else
      o += c;
  }
  return o;
}

void print_text(const contract::ValidationReport& r) {
  for (const auto& d : r.diagnostics) std::cout << contract::diagnostic_line(d) << "\n";
  std::cout << (r.ok() ? paint("ok:", Colour::green) : paint("invalid:", Colour::red)) << " "
            << r.files_checked << " file(s) checked, " << r.files_invalid << " invalid, "
            << r.diagnostics.size() << " error(s) in " << r.duration.count() << " ms\n";
}

void print_github(const contract::ValidationReport& r) {
  for (const auto& d : r.diagnostics)
    std::cout << "::error file=" << gh_prop(d.file) << ",line=" << d.line
              << ",title=" << gh_prop("cp-host validate: " + d.rule) << "::" << gh_data(contract::describe(d))
              << "\n";
  std::cout << (r.ok() ? "ok: " : "invalid: ") << r.files_checked << " file(s) checked, " << r.files_invalid
            << " invalid, " << r.diagnostics.size() << " error(s)\n";
}

}  // namespace

void add_validate(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::vector<std::string> paths;
    std::string format = "text";
    std::string schema;
    bool no_plugin_checks = false;
    unsigned jobs = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "validate",
      "Check contracts, packs, policies and plugin configs against their schemas and each other.\n"
      "Exit 0 when all are valid, 1 when any is invalid, 2 on a usage error.");
  cmd->add_option("paths", o->paths, "Files or folders (default: contracts/ packs/ policies/ under --root)");
  cmd->add_option("--format", o->format, "text (default), json, or github (workflow annotations)")
      ->check(CLI::IsMember({"text", "json", "github"}));
  cmd->add_option("--schema", o->schema, "Apply this schema to every file (see `cp-host schemas list`)");
  cmd->add_flag("--no-plugin-checks", o->no_plugin_checks, "Do not load plugins to check references to them");
  cmd->add_option("-j,--jobs", o->jobs, "Worker threads (default: one per core)");
  cmd->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      contract::ValidateOptions opts;
      for (const auto& p : o->paths) opts.paths.emplace_back(p);
      opts.root = g.root;
      opts.plugins_dir = g.plugins_dir;
      opts.check_plugins = !o->no_plugin_checks;
      opts.forced_schema = o->schema;
      opts.jobs = o->jobs;
      // A chain file is checked as `chain run` would load it: its order (depends_on, cycles, parallel
      // groups) and its steps' contracts, not only its schema.
      opts.check_chain = [&g](const std::filesystem::path& file, const plugin::Registry* plugins) {
        chain::LoadResult loaded = chain::load_chain(file, g.root, g.plugins_dir, plugins);
        if (!loaded.spec.staging.empty()) {
          std::error_code ec;
          std::filesystem::remove_all(loaded.spec.staging, ec);
        }
        std::vector<contract::Diagnostic> out = std::move(loaded.diagnostics);
        if (out.empty() && !loaded.ok && !loaded.error.empty())
          out.push_back({file.string(), 1, "", "chain", loaded.error, "", "", "task_chain"});
        return out;
      };
      contract::ValidationReport report;
      try {
        report = contract::validate(opts);
      } catch (const contract::UsageError& e) {
        std::cerr << "cp-host validate: " << e.what() << "\n";
        return kUsage;
      }
      if (o->format == "json")
        std::cout << validation_report_json(report).dump(2) << "\n";
      else if (o->format == "github")
        print_github(report);
      else
        print_text(report);
      if (root_dependent(report.diagnostics)) std::cerr << root_hint(project_root()) << "\n";
      return report.ok() ? kOk : kInvalid;
    };
  });
}

}  // namespace cp::cli
