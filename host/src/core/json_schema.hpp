// A compiled JSON Schema (draft-07) and the violations it reports. valijson stays inside json_schema.cpp.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace cp::core {

// One broken rule, said so a user can fix it.
struct SchemaViolation {
  std::string pointer;   // JSON pointer of the offending value ("" = the document root)
  std::string rule;      // the schema keyword broken: required, type, enum, pattern, ...
  std::string message;   // what is wrong
  std::string expected;  // what the schema allows there, when it can be said ("type integer", "one of [...]")
};

class JsonSchema {
 public:
  // Compiles a schema document. Throws std::invalid_argument naming the problem when the schema itself is
  // malformed.
  static JsonSchema compile(const nlohmann::json& schema);
  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;
  ~JsonSchema();

  // Validates a document. Thread-safe: a compiled schema may be shared by many threads.
  std::vector<SchemaViolation> validate(const nlohmann::json& doc) const;
  bool valid(const nlohmann::json& doc) const { return validate(doc).empty(); }

 private:
  struct Impl;
  explicit JsonSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cp::core
