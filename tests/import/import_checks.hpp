// The checks the importer's tests share: an imported model run as a user gets it (the written
// YAML read back, compiled, run unoptimized with the weights) and compared with the expected
// activations by `verify`, and the message of an import that must fail.
#pragma once

#include <doctest/doctest.h>

#include <fusiongraph/import.hpp>
#include <map>
#include <memory>
#include <string>

#include "engine/model.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"

namespace fg::test {

// `activations`: node name -> the values that node must output (rtol 1e-4 / atol 1e-5).
inline VerifyReport verify_imported(const ImportedModel& m, std::map<std::string, Tensor> inputs,
                                    std::map<std::string, Tensor> activations) {
  auto def = load_graph_string(format_imported_yaml(m), "imported.yaml");
  auto graph = std::make_shared<CompiledGraph>(compile_graph(def, builtin_ops()));
  ModelOptions options;
  options.optimize = false;
  Model model(graph, m.weights, options);
  ReferenceSet ref;
  ref.source = "test";
  ref.inputs = std::move(inputs);
  ref.activations = std::move(activations);
  return verify_against_reference(model, ref);
}

// Every row within tolerance, `rows` of them, and no reference array left unused.
inline void check_all_ok(const VerifyReport& r, size_t rows) {
  for (const VerifyRow& row : r.rows) {
    CAPTURE(row.node);
    CAPTURE(row.max_abs);
    CAPTURE(row.problem);
    CHECK(row.ok);
  }
  CHECK(r.ok());
  CHECK(r.rows.size() == rows);
  CHECK(r.unused.empty());
}

inline void check_imported(const ImportedModel& m, std::map<std::string, Tensor> inputs,
                           std::map<std::string, Tensor> activations) {
  const std::string yaml = format_imported_yaml(m);
  CAPTURE(yaml);
  const size_t rows = activations.size();
  check_all_ok(verify_imported(m, std::move(inputs), std::move(activations)), rows);
}

// The error message of importing `path`, or "" when it imports.
inline std::string import_error(const std::string& path) {
  try {
    import_keras_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace fg::test
