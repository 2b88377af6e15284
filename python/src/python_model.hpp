// fusiongraph._core.Model: a compiled graph with its weights (an fg::Session), its raw-input
// preprocessing (fg::RawInputs) and, once fit or evaluate is called, an fg::Trainer. The
// Python class fusiongraph.Model (python/fusiongraph/__init__.py) wraps it with Keras's
// argument conventions; this class takes named arrays only.
//
// Threads: run() may be called from several Python threads at once (the GIL is released while
// the graph runs; each run takes the session current when it starts). fit() swaps in the
// trained weights at its end.
#pragma once

#include <pybind11/pybind11.h>

#include <fusiongraph/data.hpp>
#include <fusiongraph/training.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace fg::python {

namespace py = pybind11;

// How a model is loaded (fusiongraph.load's keyword arguments).
struct LoadOptions {
  std::string weights;  // a safetensors file, "" = none
  std::optional<uint64_t> init_seed;
  int threads = 0;
  bool optimize = true;
  // CompileOptions::precision: bf16 runs dense and convolutions in bfloat16 where the CPU has
  // native bf16; evaluate() runs in it too, fit always trains in f32.
  Precision precision = Precision::f32;
};

// Settings of one fit call (None = the graph's `training:` value).
struct FitCall {
  std::optional<int64_t> epochs;  // to train in this call; with `resume`, the total to reach
  std::optional<int64_t> batch_size;
  std::optional<bool> shuffle;
  std::optional<double> validation_split;
  std::string checkpoint;  // saved after every epoch, "" = not saved
  std::string resume;      // a checkpoint to continue from, "" = none
  int workers = 0;
  std::string cache_dir;
  bool skip_bad_rows = false;
  int verbose = 1;  // 0 silent, 1 progress bar (on a terminal), 2 one line per epoch
};

class PythonModel {
 public:
  PythonModel(std::shared_ptr<const GraphDef> graph, const LoadOptions& options);

  std::string name() const;
  py::list inputs() const;   // [(name, shape with None, dtype, takes_raw)]
  py::list outputs() const;  // [(name, shape with None, dtype, class names)]
  int threads() const;
  std::string precision() const;  // "f32", "bf16"
  // The compiler's and the weights' warnings; for bf16 on a CPU without native bf16 also the
  // precision warning (the ISA oneDNN found; the model runs in f32).
  py::list warnings() const;

  // inputs: name -> ndarray (or, for inputs that declare preprocessing, a str or a sequence of
  // str). Returns name -> ndarray.
  py::dict run(const py::dict& inputs) const;
  // The C++ API's own time for Session::run on these inputs, `iterations` times in a row (ms
  // each), without Python in the loop: what bench/python/bench_python.py compares run() with.
  std::vector<double> time_cpp_runs(const py::dict& inputs, int iterations) const;
  // Raw values (str or sequence of str per input) -> the input tensors.
  py::dict preprocess(const py::dict& values, int threads) const;
  // The data pointer of the tensor run() would give the graph for this input (tests check that
  // a C-contiguous array of the input's dtype is not copied).
  uintptr_t input_data_address(const std::string& input, const py::handle& value) const;

  // `dims`: sizes of the inputs' null dims (graph-runner summary --dim).
  using NullDims = std::map<std::string, std::vector<int64_t>>;
  std::string summary(int64_t batch, const NullDims& dims) const;
  std::string summary_json(int64_t batch, const NullDims& dims) const;
  std::string to_dot() const;
  py::dict weights() const;  // "<node>.<param>" -> ndarray (a copy)
  void save(const std::string& path) const;
  py::list class_names(const std::string& output) const;

  // Training (python/src/training_bindings.cpp). `x`: a path (data folder or table) or a dict
  // of arrays by input name; `y`: a dict of arrays by output name (None with a path).
  // `validation`: None, a path, or a (x, y) tuple of dicts. `callbacks`: an object with Keras's
  // on_* methods (fusiongraph.callbacks.CallbackList), or None.
  py::list fit(const py::object& x, const py::object& y, const py::object& validation,
               const py::object& callbacks, const FitCall& call);
  // `call`: its batch size and data pipeline options (the rest is not used).
  py::list evaluate(const py::object& x, const py::object& y, const FitCall& call);
  int64_t epochs_done() const;
  py::list history() const;  // [(epoch, logs dict)] of every epoch so far, a checkpoint's too

 private:
  struct State {
    Session session;
    RawInputs raw;
  };
  std::shared_ptr<const State> state() const;
  std::map<std::string, Tensor> input_tensors(const State& state, const py::dict& inputs) const;
  void set_state(std::shared_ptr<const State> state);
  std::unique_lock<std::mutex> training_lock() const;
  Trainer& trainer(const FitCall& call);
  void refresh_from_trainer();

  std::shared_ptr<const GraphDef> graph_;
  LoadOptions options_;
  mutable std::mutex mutex_;  // guards state_ (the pointer, not the state)
  std::shared_ptr<const State> state_;
  mutable std::mutex training_mutex_;  // held by fit, evaluate and a checkpoint's save
  std::unique_ptr<Trainer> trainer_;
};

void bind_model(py::module_& module);

}  // namespace fg::python
