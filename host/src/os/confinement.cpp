#include "os/confinement.hpp"

#include <stdexcept>

namespace cp::os {

nlohmann::json Confinement::to_wire() const {
  return {{"policy", sandbox ? sandbox->policy().to_json() : nlohmann::json()},
          {"cgroup", cgroup ? cgroup->path().string() : ""}};
}

std::shared_ptr<const Confinement> Confinement::from_wire(const nlohmann::json& doc, std::string& error) {
  if (!doc.is_object() || !doc.contains("policy") || !doc["policy"].is_object()) {
    error = "no sandbox policy came with the call";
    return nullptr;
  }
  auto c = std::make_shared<Confinement>();
  try {
    c->sandbox = PreparedSandbox::prepare(SandboxPolicy::from_json(doc["policy"]), error);
  } catch (const std::invalid_argument& e) {
    error = e.what();
    return nullptr;
  }
  if (!c->sandbox) return nullptr;
  std::string cg = doc.value("cgroup", "");
  if (!cg.empty()) {
    c->cgroup = RunCgroup::attach(cg);
    if (!c->cgroup) {
      error = "the run's cgroup " + cg + " is gone";
      return nullptr;
    }
  }
  return c;
}

}  // namespace cp::os
