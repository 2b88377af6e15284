// What the fuzz targets do with one input, shared by the libFuzzer targets (tests/fuzz/targets/,
// built with clang by scripts/fuzz.sh) and the regression replay in the normal suite
// (tests/fuzz/test_fuzz_regressions.cpp). Each entry point feeds the bytes to a reader the way
// graph-runner does and either returns or throws fg::Error; anything else (another exception, a
// sanitizer report, a signal, a hang, unbounded memory) is a finding. See docs/fuzzing.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fg::fuzz {

// YAML graph text: load_graph_string, compile_graph with the built-in ops, the symbolic
// summary, table, JSON and DOT; then bind with batch 2 and every null dim 3, and the concrete
// weights, FLOPs and summary; the same again with batch 1 and the null dims graph-runner run
// binds without --dim (default_shape, else 100).
void graph_yaml(const uint8_t* data, size_t size);

// A safetensors file: read_safetensors (every tensor's bytes read, borrowed data checked to lie
// inside the file), then WeightStore::load_safetensors and validate against a small graph
// (kValidateGraph) that has dense, embedding, conv1d and batch_normalization weights.
void safetensors_file(const uint8_t* data, size_t size);

// An .npy file: read_npy as float32 and as int32 (every element read).
void npy_file(const uint8_t* data, size_t size);

// The graph safetensors_file validates against; tests/fuzz/make_corpus.py writes seeds for it.
extern const char* const kValidateGraph;

struct Target {
  std::string name;  // the fuzz target is fuzz_<name>; reproducers live in regressions/<name>/
  void (*run)(const uint8_t* data, size_t size);
};
const std::vector<Target>& targets();

}  // namespace fg::fuzz
