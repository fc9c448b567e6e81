#include "plugin/probe_call.hpp"
#include "core/json_depth.hpp"

#include "core/schema_catalog.hpp"
#include "plugin/instance.hpp"
#include "plugin/isolated_plugin.hpp"

#include <nlohmann/json.hpp>

namespace cp::plugin {

using nlohmann::json;

namespace {
json failed(const std::string& message) {
  return {{"status", "error"}, {"capabilities", json::object()}, {"ttl_seconds", 0}, {"message", message}};
}
}  // namespace

json call_probe(const PluginInfo& info) {
  CallOutcome out;
  CallContext ctx(info.id);
  if (info.isolation == "isolated") {
    IsolatedPlugin worker(info, info.limits);
    out = worker.probe(ctx, std::chrono::seconds(60));
  } else {
    std::string error;
    auto inst = Instance::create(info, error);
    if (!inst) return failed(error);
    out = inst->probe(ctx);
  }
  if (!out.ok()) return failed(out.error);
  if (!core::json_depth_ok(out.output)) return failed("probe returned JSON nested too deep");
  json doc = json::parse(out.output, nullptr, false);
  if (doc.is_discarded()) return failed("probe returned invalid JSON");
  auto v = core::schema("probe_result").validate(doc);
  if (!v.empty())
    return failed("probe output breaks schemas/probe_result.schema.json at " + v[0].pointer + ": " +
                  v[0].message);
  return doc;
}

}  // namespace cp::plugin
