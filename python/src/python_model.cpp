// The inference half of fusiongraph._core.Model (python_model.hpp); training is in
// training_bindings.cpp.
#include "python_model.hpp"

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>

#include "numpy_tensors.hpp"

namespace fg::python {

namespace {

py::tuple shape_tuple(const Dims& shape) {
  py::list dims;
  for (int64_t d : shape) dims.append(d == kDynamic ? py::object(py::none()) : py::int_(d));
  return py::tuple(dims);
}

// A raw value: a str, a sequence of str, or a NumPy array of strings / objects.
bool is_raw_value(const py::handle& value) {
  if (py::isinstance<py::str>(value)) return true;
  if (py::isinstance<py::array>(value)) {
    const char kind = py::reinterpret_borrow<py::array>(value).dtype().kind();
    return kind == 'U' || kind == 'O' || kind == 'S';
  }
  if ((py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) && py::len(value) > 0)
    return py::isinstance<py::str>(py::reinterpret_borrow<py::sequence>(value)[0]);
  return false;
}

std::vector<std::string> raw_strings(const std::string& input, const py::handle& value) {
  if (py::isinstance<py::str>(value)) return {value.cast<std::string>()};
  py::object items = py::isinstance<py::array>(value) ? value.attr("tolist")()
                                                      : py::reinterpret_borrow<py::object>(value);
  std::vector<std::string> out;
  size_t i = 0;
  for (py::handle item : items) {
    if (!py::isinstance<py::str>(item))
      throw Error(fmt::format("input '{}': raw value {} is a {}, not a str (a path or a text)",
                              input, i, std::string(py::str(item.get_type().attr("__name__")))))
          .tensor(input);
    out.push_back(item.cast<std::string>());
    ++i;
  }
  return out;
}

py::dict to_dict(std::map<std::string, Tensor> tensors) {
  py::dict out;
  for (auto& [name, tensor] : tensors) out[py::str(name)] = to_numpy(std::move(tensor));
  return out;
}

CompileOptions compile_options(const LoadOptions& options) {
  CompileOptions co;
  co.threads = options.threads;
  co.optimize = options.optimize;
  co.precision = options.precision;
  co.weights_file = options.weights;
  co.init_seed = options.init_seed;
  return co;
}

}  // namespace

PythonModel::PythonModel(std::shared_ptr<const GraphDef> graph, const LoadOptions& options)
    : graph_(std::move(graph)), options_(options) {
  Session session(graph_, compile_options(options));
  RawInputs raw(session, options.weights);
  state_ = std::make_shared<const State>(State{std::move(session), std::move(raw)});
}

std::shared_ptr<const PythonModel::State> PythonModel::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void PythonModel::set_state(std::shared_ptr<const State> state) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = std::move(state);
}

std::string PythonModel::name() const {
  return state()->session.name();
}
int PythonModel::threads() const {
  return state()->session.threads();
}
std::string PythonModel::precision() const {
  return precision_name(state()->session.precision());
}

py::list PythonModel::inputs() const {
  auto st = state();
  py::list out;
  for (const std::string& name : st->session.input_names()) {
    const TensorType t = st->session.input_type(name);
    out.append(py::make_tuple(name, shape_tuple(t.shape), std::string(dtype_name(t.dtype)),
                              st->raw.takes_raw(name)));
  }
  return out;
}

py::list PythonModel::outputs() const {
  auto st = state();
  py::list out;
  for (const std::string& name : st->session.output_names()) {
    const TensorType t = st->session.output_type(name);
    out.append(py::make_tuple(name, shape_tuple(t.shape), std::string(dtype_name(t.dtype)),
                              py::cast(st->raw.class_names(name))));
  }
  return out;
}

py::list PythonModel::warnings() const {
  py::list out;
  const auto st = state();  // kept for the loop: fit may swap the model's state meanwhile
  for (const Diagnostic& d : st->session.warnings()) out.append(d.format());
  if (const std::string w = st->session.precision_warning(); !w.empty())
    out.append("warning: " + w);
  return out;
}

// The tensors of a run: arrays converted (or borrowed), raw values decoded (without the GIL).
std::map<std::string, Tensor> PythonModel::input_tensors(const State& st,
                                                         const py::dict& inputs) const {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::vector<std::string>> raw;
  for (auto [key, value] : inputs) {
    const std::string name = py::str(key);
    if (st.raw.takes_raw(name) && is_raw_value(value)) {
      raw[name] = raw_strings(name, value);
      continue;
    }
    const TensorType type = st.session.input_type(name);  // unknown names: did-you-mean
    tensors[name] = to_tensor(name, value, type.dtype);
  }
  if (!raw.empty()) {
    py::gil_scoped_release released;
    for (auto& [name, tensor] : st.raw.batch(raw)) tensors[name] = std::move(tensor);
  }
  return tensors;
}

py::dict PythonModel::run(const py::dict& inputs) const {
  auto st = state();
  std::map<std::string, Tensor> tensors = input_tensors(*st, inputs);
  std::map<std::string, Tensor> outputs;
  {
    py::gil_scoped_release released;
    outputs = st->session.run(tensors);
  }
  return to_dict(std::move(outputs));
}

std::vector<double> PythonModel::time_cpp_runs(const py::dict& inputs, int iterations) const {
  auto st = state();
  const std::map<std::string, Tensor> tensors = input_tensors(*st, inputs);
  std::vector<double> ms;
  py::gil_scoped_release released;
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)st->session.run(tensors);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return ms;
}

py::dict PythonModel::preprocess(const py::dict& values, int threads) const {
  auto st = state();
  std::map<std::string, std::vector<std::string>> raw;
  for (auto [key, value] : values) {
    const std::string name = py::str(key);
    raw[name] = raw_strings(name, value);
  }
  RawBatchOptions options;
  options.threads = std::max(1, threads);
  std::map<std::string, Tensor> tensors;
  {
    py::gil_scoped_release released;
    tensors = st->raw.batch(raw, options);
  }
  return to_dict(std::move(tensors));
}

uintptr_t PythonModel::input_data_address(const std::string& input, const py::handle& value) const {
  const TensorType type = state()->session.input_type(input);
  const Tensor t = to_tensor(input, value, type.dtype);
  return reinterpret_cast<uintptr_t>(t.raw());
}

std::string PythonModel::summary(int64_t batch, const NullDims& dims) const {
  return state()->session.summary(SummaryOptions{batch, dims});
}

std::string PythonModel::summary_json(int64_t batch, const NullDims& dims) const {
  return state()->session.summary_json(SummaryOptions{batch, dims});
}

std::string PythonModel::to_dot() const {
  return format_dot(state()->session.graph(), {});
}

py::dict PythonModel::weights() const {
  py::dict out;
  const auto st = state();  // kept for the loop (see warnings())
  for (const auto& [key, tensor] : st->session.weights().tensors()) {
    Tensor copy(tensor.dtype(), tensor.shape());
    std::memcpy(copy.mutable_data<char>(), tensor.raw(), tensor.bytes());
    out[py::str(key)] = to_numpy(std::move(copy));
  }
  return out;
}

void PythonModel::save(const std::string& path) const {
  if (trainer_) {  // weights + training state: fit(resume=path) continues from it
    const std::unique_lock<std::mutex> lock = training_lock();
    py::gil_scoped_release released;
    trainer_->save(path);
    return;
  }
  auto st = state();
  WeightStore weights = st->session.weights();
  if (!st->raw.preprocessors().config().empty())  // as a checkpoint keeps it
    weights.set_metadata(kPreprocessingMetadataKey, st->raw.preprocessors().state_json());
  py::gil_scoped_release released;
  weights.save_safetensors(path);
}

py::list PythonModel::class_names(const std::string& output) const {
  return py::cast(state()->raw.class_names(output));
}

}  // namespace fg::python
