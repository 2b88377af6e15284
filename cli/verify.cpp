// graph-runner verify GRAPH --weights W --reference REF: runs the graph on the reference's inputs
// and compares every node's output with the reference array of the same name (docs/import.md).
#include <fmt/format.h>

#include <fusiongraph/import.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"

namespace fg::cli {
namespace {

struct VerifyOptions {
  std::string graph, weights, reference;
  double rtol = 1e-4, atol = 1e-5;
  int threads = 0;
};

void print_report(const VerifyReport& r) {
  size_t width = 4;
  for (const VerifyRow& row : r.rows) width = std::max(width, row.node.size());
  std::cout << fmt::format("{:<{}}  {:<16}  {:>10}  {:>10}  {}\n", "node", width, "shape",
                           "max abs", "max rel", "result");
  for (const VerifyRow& row : r.rows) {
    std::string result =
        row.ok ? "ok" : (row.node == r.first_divergence ? "FIRST DIVERGENCE" : "diverges");
    if (!row.problem.empty()) result += ": " + row.problem;
    std::cout << fmt::format("{:<{}}  {:<16}  {:>10.3e}  {:>10.3e}  {}\n", row.node, width,
                             format_shape(row.shape), row.max_abs, row.max_rel, result);
  }
  for (const std::string& n : r.notes) std::cout << "note: " << n << "\n";
  if (!r.not_compared.empty())
    std::cout << "no reference for: " << quoted_list(r.not_compared) << "\n";
  if (!r.unused.empty())
    std::cout << "reference arrays naming no node: " << quoted_list(r.unused) << "\n";
}

int cmd_verify(const VerifyOptions& o) {
  CompileOptions options;
  options.weights_file = o.weights;
  options.threads = o.threads;
  options.optimize = false;  // one kernel per node: every node's output exists
  const Session session = load(o.graph, options);
  const VerifyReport report =
      verify_against_reference(session.model(), read_reference(o.reference), {o.rtol, o.atol});
  print_report(report);
  if (report.ok()) {
    std::cout << fmt::format("verified: {} nodes within rtol {} / atol {}\n", report.rows.size(),
                             o.rtol, o.atol);
    return 0;
  }
  std::cout << fmt::format("FAILED: first divergence at node '{}' (rtol {}, atol {})\n",
                           report.first_divergence, o.rtol, o.atol);
  return 1;
}

}  // namespace

Command add_verify_command(CLI::App& app) {
  auto o = std::make_shared<VerifyOptions>();
  auto* c =
      app.add_subcommand("verify", "Compare every node's output with reference activations")
          ->footer(
              "Example:\n  graph-runner verify model.yaml --weights model.safetensors "
              "--reference layer_outputs.npz\n"
              "REF: a folder of <input>.npy and <node>.npy, an .npz with those keys, or an HDF5 "
              "file with inputs/, activations/ and predictions/.\n"
              "A node passes when |got - want| <= atol + rtol * |want| everywhere.\n"
              "Exit status: 0 all within tolerance, 1 a divergence or an error, 2 bad usage.");
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--weights", o->weights, "Weights (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--reference", o->reference, "Reference folder, .npz or .h5")
      ->required()
      ->check(CLI::ExistingPath);
  c->add_option("--rtol", o->rtol, "Relative tolerance (default 1e-4)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--atol", o->atol, "Absolute tolerance (default 1e-5)")
      ->check(CLI::NonNegativeNumber);
  add_threads_option(c, o->threads);
  return {c, [o] { return cmd_verify(*o); }};
}

}  // namespace fg::cli
