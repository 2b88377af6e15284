// Helpers shared by the tests: deterministic random tensors, running a YAML graph, comparing to
// a reference with a stated tolerance, and capturing compile errors.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/plan.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "kernels/tensor.hpp"

namespace fg::test {

// Uniform values in [lo, hi), deterministic for a seed.
Tensor random_tensor(const Dims& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);
// Uniform ints in [lo, hi].
Tensor random_ints(const Dims& shape, uint64_t seed, int lo, int hi);
Tensor make_tensor(const Dims& shape, const std::vector<float>& values);
Tensor make_int_tensor(const Dims& shape, const std::vector<int>& values);
std::vector<double> to_doubles(const Tensor& t);

// Compiles the YAML text, binds the weights ("<node>.<param>" -> Keras-shaped f32 tensor) and runs
// it through every plan: optimized and unfused, with 1 and 2 threads (or only `threads` when
// given), the activation arena filled with NaN before each run, and checks each plan's arena
// (Plan::arena_problem). Returns the optimized plan's outputs by output name; check_close on one
// of them also checks the other plans' outputs. Throws fg::Error like the library does.
std::map<std::string, Tensor> run_yaml(const std::string& yaml,
                                       const std::map<std::string, Tensor>& inputs,
                                       const std::map<std::string, Tensor>& weights,
                                       int threads = 0);

// Every element close: |got - want| <= atol + rtol * |want|. Reports the first mismatches. For an
// output of the last run_yaml, the same output of every plan it ran is checked too.
void check_close(const Tensor& got, const std::vector<double>& want, double rtol = 1e-5,
                 double atol = 1e-5);
void check_shape(const Tensor& got, const Dims& want);

// The YAML text compiled with the built-in ops (throws fg::Error like the library).
std::shared_ptr<CompiledGraph> compile_yaml(const std::string& yaml,
                                            const std::string& file = "test.yaml");
// impl_info() of the plan step named `step` (a node, or "<node>/to_plain" ...), or "no step X".
std::string step_impl(const Plan& plan, const std::string& step);

// The message of the fg::Error that compiling this YAML throws, or "" if it compiles.
std::string compile_error(const std::string& yaml, const std::string& file = "test.yaml");
// The message of the fg::Error that f throws, "" when it throws none.
std::string error_of(const std::function<void()>& f);

// Absolute path of a file in the source tree (e.g. "graphs/multimodal_fusion.yaml").
std::string source_path(const std::string& relative);
// Absolute path of the graph-runner binary built with the tests.
std::string graph_runner_path();

}  // namespace fg::test
