// FusionGraph's public API: read a YAML graph, compile it with weights, run it with named
// tensors. This header and <fusiongraph/extension.hpp> (custom ops) are the supported surface;
// the headers they include are installed with them but are not meant to be included directly.
//
//   fg::CompileOptions options;
//   options.weights_file = "weights.safetensors";  // or options.weights / options.init_seed
//   fg::Session session = fg::load("graphs/multimodal_fusion.yaml", options);
//   auto outputs = session.run({{"text", text}, {"image", image}, {"audio", audio}});
//   const fg::Tensor& probs = outputs.at("classifier");
//
// Every failure is an fg::Error (file:line:col, node, op, message, hint). See docs/api.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/file_io.hpp"
#include "engine/model.hpp"
#include "engine/npy.hpp"
#include "engine/weights.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "framework/graph_def.hpp"
#include "framework/registry.hpp"
#include "framework/shape.hpp"
#include "framework/summary.hpp"
#include "kernels/tensor.hpp"

namespace fg {

// CompileOptions::threads (and graph-runner --threads) take 0 (all cores) or 1..kMaxThreads.
constexpr int kMaxThreads = 1024;
// CompileOptions::max_cached_plans takes 1..kMaxCachedPlans; max_idle_states 0..kMaxIdleStates.
constexpr size_t kMaxCachedPlans = 100000;
constexpr size_t kMaxIdleStates = 1024;

struct CompileOptions {
  // The ops the graph may use; nullptr means the built-ins (builtin_ops()). To add
  // custom ops: `OpRegistry ops = builtin_ops(); ops.add(my_op());` and point this at
  // it (it is only used during compilation; it need not outlive the Session).
  const OpRegistry* ops = nullptr;
  // OpenMP threads for the primitives and plain loops; 0 = all cores, else 1..kMaxThreads
  // (anything else is an fg::Error from the Session).
  int threads = 0;
  // Graph-level plan optimizations (views instead of copies, ...); false gives the plain
  // one-kernel-per-node plan.
  bool optimize = true;
  // Arithmetic precision (kernels/precision.hpp); unset: int8 for an int8-quantized weights
  // file (`graph-runner quantize`), else f32.
  //   bf16: dense, conv1d and conv2d run with bf16 inputs and weights (weights converted once
  //         when a plan is built; f32 accumulation, bias and outputs) on CPUs with native bf16
  //         (AVX-512 BF16), every other op in f32.
  //   int8: dense, conv1d and conv2d run with u8 / s8 inputs and s8 weights (s32 accumulation,
  //         f32 bias and outputs) on CPUs with VNNI: the nodes a quantized file holds with its
  //         calibrated input scales, other dense layers quantized dynamically (per run), other
  //         ops in f32 (docs/quantization.md).
  // Without the native instructions those ops run in f32 and Session::precision_warning() says
  // so. Graph inputs and outputs stay f32.
  std::optional<Precision> precision;
  // The weights ("<node>.<param>", Keras shapes): at most one of the three sources. A graph
  // without weights needs none; a graph with weights and no source is an error.
  std::string weights_file;            // a safetensors file (read once into owned memory)
  std::optional<WeightStore> weights;  // tensors already in memory
  std::optional<uint64_t> init_seed;   // Keras-style initial weights (as graph-runner init)

  // Memory bounds of a long-lived session (docs/limits.md); out-of-range values are an
  // fg::Error from the Session.
  // The memory budget of one plan in bytes: the plan for a new input shape that would need more
  // (weights plus every activation, estimated before it is built) is refused with an fg::Error
  // naming the largest consumer. 0 (the default) = the machine's physical memory.
  uint64_t max_memory = 0;
  // The plan cache keeps the plans of the most recently used input shapes: at most
  // max_cached_plans (1..kMaxCachedPlans, default 16) and at most max_cached_plan_bytes of
  // activation arenas (1 or more, default 1 GiB); past either the least recently used are
  // dropped (the newest plan always stays).
  size_t max_cached_plans = 16;
  size_t max_cached_plan_bytes = size_t{1} << 30;
  // Idle execution states (arena, stream, bound primitives) kept per plan for later runs:
  // 0..kMaxIdleStates, default 4. More concurrent runs of one shape make extra states, freed
  // when they end.
  size_t max_idle_states = 4;
};

// What a plan for one set of input shapes needs (Session::plan_figures).
struct PlanFigures {
  size_t arena_bytes = 0;            // activation arena, with buffers reusing memory
  size_t unplanned_arena_bytes = 0;  // the same without reuse (sum of all buffers)
  size_t scratchpad_bytes = 0;       // oneDNN scratchpads (shared by the steps)
  double flops = 0;                  // whole batch, all steps
};

// Time spent building a Session (Session::load_times), in milliseconds.
struct LoadTimes {
  double compile_ms = 0;  // compiling the graph (reading the file is not included)
  double weights_ms = 0;  // reading, converting or initializing the weights
  double model_ms = 0;    // setting up the model (plans are built on the first run)
};

// A compiled graph with its weights, ready to run. Cheap to copy (copies share the model);
// run() may be called from several threads at once.
class Session {
 public:
  // Compiles a graph that was read already (or built by an importer). Throws fg::Error.
  explicit Session(std::shared_ptr<const GraphDef> graph, const CompileOptions& options = {});

  const std::string& name() const;

  // Graph inputs and outputs in file order.
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
  // Declared types: shape[0] is the batch (kDynamic), `null` dims are kDynamic. Unknown names
  // throw fg::Error with a did-you-mean.
  TensorType input_type(const std::string& name) const;
  TensorType output_type(const std::string& name) const;
  // Concrete output types for concrete input shapes (full shapes, batch first), without
  // running anything. Throws fg::Error naming the node when the shapes do not fit.
  std::map<std::string, TensorType> output_types(
      const std::map<std::string, Dims>& input_shapes) const;
  // Full input shapes for a batch: each input's null dims take `null_dims[name]` (in order),
  // else the input's `default_shape` from the YAML, else 100. Throws fg::Error for unknown
  // names or a wrong count of sizes.
  std::map<std::string, Dims> input_shapes(
      int64_t batch, const std::map<std::string, std::vector<int64_t>>& null_dims = {}) const;
  // Deterministic inputs of these shapes (from `seed`): floats in [0, 1); int32 ids in
  // [1, n) where n is the smallest index_range() among the ops reading the input (an
  // embedding's input_dim), 100 when no op bounds it.
  std::map<std::string, Tensor> synthetic_inputs(const std::map<std::string, Dims>& input_shapes,
                                                 uint64_t seed = 1) const;
  // True when the output's rows (last axis) are probability distributions (softmax).
  bool output_is_probabilities(const std::string& output) const;

  // Runs the graph: inputs by input name (every input, batch first, same batch), outputs by
  // output name. Throws fg::Error for missing or unknown inputs, wrong dtypes or shapes.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const RunOptions& options = {}) const;
  // Arena, scratchpad and FLOPs of the plan for these full input shapes (builds and caches
  // the plan like a run would, runs nothing).
  PlanFigures plan_figures(const std::map<std::string, Dims>& input_shapes) const;
  // Throws the fg::Error that a run with inputs of these full shapes would give before its plan
  // is built (CompileOptions::max_memory, shapes that do not fit), without allocating or
  // building anything: check before making or reading large inputs.
  void check_memory_budget(const std::map<std::string, Dims>& input_shapes) const;

  // Keras-style summary table (parameters, FLOPs per sample) or JSON.
  std::string summary(const SummaryOptions& options = {}) const;
  std::string summary_json(const SummaryOptions& options = {}) const;
  // "<node>.<param>" -> Keras shape and initialiser, for every weight of the graph.
  std::vector<std::pair<std::string, WeightSpec>> weight_specs() const;
  const std::vector<Diagnostic>& warnings() const;
  int threads() const;
  Precision precision() const;
  // "" unless precision is bf16 and the CPU (as oneDNN sees it: ONEDNN_MAX_CPU_ISA caps it) has
  // no native bf16: then the message naming the ISA found; the session runs in f32.
  std::string precision_warning() const;
  // The weights the session runs with (save them with WeightStore::save_safetensors), and
  // their total size in bytes.
  const WeightStore& weights() const;
  size_t weight_bytes() const;
  const LoadTimes& load_times() const;

  // The layers underneath, for what the facade does not cover. (Profiling and intermediate
  // tensors come through run()'s RunOptions; plan sizes through plan_figures().)
  const CompiledGraph& graph() const;
  const Model& model() const;

 private:
  std::shared_ptr<const CompiledGraph> graph_;
  std::shared_ptr<Model> model_;
  LoadTimes load_times_;
};

// Reads and compiles a graph file / YAML text (`file` names it in messages). Throws fg::Error.
Session load(const std::string& path, const CompileOptions& options = {});
Session load_string(const std::string& yaml, const CompileOptions& options = {},
                    const std::string& file = "<string>");

// Reads a graph file / YAML text into its definition without compiling it: what Session's and
// Trainer's constructors take (one definition may serve both). Throws fg::Error (syntax,
// schema, limits; docs/limits.md).
std::shared_ptr<const GraphDef> read_graph(const std::string& path);
std::shared_ptr<const GraphDef> read_graph_string(const std::string& yaml,
                                                  const std::string& file = "<string>");

// Session::input_shapes and Session::synthetic_inputs for a compiled graph (the Trainer uses
// them; no weights needed).
std::map<std::string, Dims> input_shapes_for(
    const CompiledGraph& graph, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& null_dims = {});
std::map<std::string, Tensor> synthetic_inputs_for(const CompiledGraph& graph,
                                                   const std::map<std::string, Dims>& input_shapes,
                                                   uint64_t seed = 1);

// Reads and compiles a graph file without weights, for checking and describing it
// (graph-runner validate, summary, dot). `ops` as in CompileOptions. Throws fg::Error.
std::shared_ptr<const CompiledGraph> compile_file(const std::string& path,
                                                  const OpRegistry* ops = nullptr);

// Files: read_npy / write_npy (engine/npy.hpp); write_file_atomic, replace_directory and the
// destination checks (engine/file_io.hpp) write every file atomically.

// Small helpers to make and read host tensors (row major, batch first). Throw fg::Error when
// `values` does not have as many elements as `shape`.
Tensor tensor_f32(const Dims& shape, const std::vector<float>& values);
Tensor tensor_i32(const Dims& shape, const std::vector<int32_t>& values);
std::vector<float> to_floats(const Tensor& tensor);  // int32 tensors are converted

// A registry holding every built-in op (a fresh copy each call; cheap): the start of a registry
// with custom ops. Defined with the ops, in layers/registry.cpp.
OpRegistry builtin_ops();

// The CPU instruction set oneDNN dispatches to, e.g. "avx512_core_bf16" or "avx2"
// (ONEDNN_MAX_CPU_ISA caps it): bf16 runs natively from "avx512_core_bf16" on.
std::string cpu_isa();

// The library version, e.g. "0.1.0" (the CMake project version it was built with).
const char* version();

}  // namespace fg
