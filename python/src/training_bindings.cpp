// The training half of fusiongraph._core.Model (python_model.hpp): fit and evaluate on paths or
// NumPy arrays, through one fg::Trainer kept between calls (its optimizer state, its epochs),
// with Keras's progress bar written to sys.stdout and the Python callbacks called on the
// training thread under the GIL. Ctrl-C is seen at the next batch boundary: the
// KeyboardInterrupt leaves fit with the checkpoint of the last finished epoch untouched.
#include <fmt/format.h>
#include <pybind11/stl.h>

#include <ostream>
#include <streambuf>

#include "numpy_tensors.hpp"
#include "python_model.hpp"

namespace fg::python {

namespace {

// A streambuf that hands what it gets to sys.stdout (under the GIL) at every flush.
class PythonStdoutBuffer : public std::streambuf {
 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) pending_ += static_cast<char>(c);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    pending_.append(s, static_cast<size_t>(n));
    return n;
  }
  int sync() override {
    if (pending_.empty()) return 0;
    py::gil_scoped_acquire gil;
    py::module_ sys = py::module_::import("sys");
    sys.attr("stdout").attr("write")(pending_);
    sys.attr("stdout").attr("flush")();
    pending_.clear();
    return 0;
  }

 private:
  std::string pending_;
};

py::dict logs_dict(const TrainingLogs& logs) {
  py::dict out;
  for (const auto& [name, value] : logs) out[py::str(name)] = value;
  return out;
}

bool stdout_is_terminal() {
  py::object out = py::module_::import("sys").attr("stdout");
  return py::hasattr(out, "isatty") && out.attr("isatty")().cast<bool>();
}

// Calls the Python callback list's Keras methods on the training thread. Before each call it
// runs Python's signal handlers, so Ctrl-C raises KeyboardInterrupt there (py::error_already_set
// then leaves fit at that batch boundary).
class PythonCallbacks : public TrainingCallback {
 public:
  explicit PythonCallbacks(py::object callbacks) : callbacks_(std::move(callbacks)) {}
  ~PythonCallbacks() override {
    py::gil_scoped_acquire gil;
    callbacks_ = py::object();
  }

  void on_train_begin(const std::vector<std::string>& names) override {
    call([&] { return callbacks_.attr("on_train_begin")(py::dict()); });
  }
  void on_epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) override {
    call([&] { return callbacks_.attr("on_epoch_begin")(epoch, py::dict()); });
  }
  void on_batch_end(const BatchProgress& progress) override {
    call([&] {
      return callbacks_.attr("on_train_batch_end")(progress.step - 1, logs_dict(progress.logs));
    });
  }
  void on_epoch_end(const EpochResult& epoch) override {
    call([&] { return callbacks_.attr("on_epoch_end")(epoch.epoch, logs_dict(epoch.logs)); });
  }
  void on_train_end(const FitResult& result) override {
    call([&] { return callbacks_.attr("on_train_end")(py::dict()); });
  }

 private:
  // Takes the GIL, runs Python's signal handlers (KeyboardInterrupt), then `fn`, which makes
  // its Python arguments under the GIL.
  template <typename Fn>
  void call(const Fn& fn) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!callbacks_.is_none()) fn();
  }

  py::object callbacks_;
};

// Arrays by name: a dict of array-likes.
std::map<std::string, HostArray> host_arrays(const py::dict& arrays, const char* what) {
  std::map<std::string, HostArray> out;
  for (auto [key, value] : arrays) {
    const std::string name = py::str(key);
    out[name] = to_host_array(fmt::format("{} '{}'", what, name), value);
  }
  return out;
}

ArrayData array_data(const py::object& x, const py::object& y, const std::string& name) {
  ArrayData data;
  data.name = name;
  data.inputs = host_arrays(x.cast<py::dict>(), "input");
  if (!y.is_none()) data.targets = host_arrays(y.cast<py::dict>(), "targets of output");
  return data;
}

bool is_path(const py::object& x) {
  return py::isinstance<py::str>(x) ||
         py::isinstance(x, py::module_::import("os").attr("PathLike"));
}

py::list history_list(const std::vector<EpochResult>& epochs) {
  py::list out;
  for (const EpochResult& e : epochs) out.append(py::make_tuple(e.epoch, logs_dict(e.logs)));
  return out;
}

TrainingOverrides overrides_of(const FitCall& call) {
  TrainingOverrides o;
  o.epochs = call.epochs;
  o.batch_size = call.batch_size;
  o.shuffle = call.shuffle;
  o.validation_split = call.validation_split;
  return o;
}

}  // namespace

// The trainer: made at the first fit / evaluate from the weights the model runs with, then
// kept (its optimizer state, its epochs); each call sets the data pipeline's options anew.
Trainer& PythonModel::trainer(const FitCall& call) {
  if (!trainer_) {
    auto st = state();
    TrainerOptions options;
    options.threads = st->session.threads();
    options.weights = st->session.weights();
    options.evaluate_precision = options_.precision;
    py::gil_scoped_release released;
    trainer_ = std::make_unique<Trainer>(graph_, options);
  }
  trainer_->set_data_options(call.workers, call.cache_dir, call.skip_bad_rows);
  return *trainer_;
}

// The session runs the trainer's weights (and its learnt preprocessing) from now on.
void PythonModel::refresh_from_trainer() {
  CompileOptions options;
  options.threads = state()->session.threads();
  options.optimize = options_.optimize;
  options.precision = options_.precision;
  RawInputs raw = trainer_->raw_inputs();
  WeightStore weights = trainer_->weights();
  if (!raw.preprocessors().config().empty())  // a trainer made from them again learns nothing anew
    weights.set_metadata(kPreprocessingMetadataKey, raw.preprocessors().state_json());
  options.weights = std::move(weights);
  Session session(graph_, options);
  set_state(std::make_shared<const State>(State{std::move(session), std::move(raw)}));
}

// One fit or evaluate at a time per model: a second one from another thread is an error (not
// a wait, which would hold the GIL the first one's callbacks need).
std::unique_lock<std::mutex> PythonModel::training_lock() const {
  std::unique_lock<std::mutex> lock(training_mutex_, std::try_to_lock);
  if (!lock.owns_lock())
    throw Error("this model is training or evaluating in another thread")
        .hint("wait for that call to return, or load a second model to train beside it");
  return lock;
}

py::list PythonModel::fit(const py::object& x, const py::object& y, const py::object& validation,
                          const py::object& callbacks, const FitCall& call) {
  const std::unique_lock<std::mutex> lock = training_lock();
  Trainer& t = trainer(call);
  if (!call.resume.empty()) {
    py::gil_scoped_release released;
    t.resume(call.resume);
  }
  // Epochs of this call (Keras: fit trains `epochs` more), or with resume the total to reach.
  TrainingOverrides overrides = overrides_of(call);
  const int64_t epochs = call.epochs.value_or(parse_training_config(*graph_->training).epochs);
  overrides.epochs = call.resume.empty() ? t.initial_epoch() + epochs : epochs;
  t.set_fit_overrides(overrides);
  FitOptions options;
  options.save_path = call.checkpoint;
  std::optional<ArrayData> train;
  if (!is_path(x)) train = array_data(x, y, "x");
  if (is_path(validation)) {
    options.validation_data = py::str(validation);
  } else if (!validation.is_none()) {
    const py::tuple xy = validation.cast<py::tuple>();
    options.validation_arrays = array_data(xy[0], xy[1], "validation_data");
  }
  const std::string path = train ? "" : std::string(py::str(x));
  PythonStdoutBuffer buffer;
  std::ostream out(&buffer);
  std::optional<ProgressBar> bar;
  if (call.verbose > 0) bar.emplace(out, call.verbose == 1 && stdout_is_terminal());
  PythonCallbacks bridge(callbacks);
  if (bar) options.callbacks.push_back(&*bar);
  options.callbacks.push_back(&bridge);
  const size_t before = t.history().size();
  try {
    py::gil_scoped_release released;
    if (train)
      t.fit(*train, options);
    else
      t.fit(path, options);
  } catch (...) {
    out.flush();
    refresh_from_trainer();  // the weights as they were when training stopped
    throw;
  }
  out.flush();
  refresh_from_trainer();
  const std::vector<EpochResult>& all = t.history();
  return history_list(
      std::vector<EpochResult>(all.begin() + static_cast<int64_t>(before), all.end()));
}

py::list PythonModel::evaluate(const py::object& x, const py::object& y, const FitCall& call) {
  const std::unique_lock<std::mutex> lock = training_lock();
  Trainer& t = trainer(call);
  TrainingOverrides overrides;
  overrides.batch_size = call.batch_size;
  t.set_fit_overrides(overrides);
  EvaluateResult result;
  if (is_path(x)) {
    const std::string path = py::str(x);
    py::gil_scoped_release released;
    result = t.evaluate(path);
  } else {
    const ArrayData data = array_data(x, y, "x");
    py::gil_scoped_release released;
    result = t.evaluate(data);
  }
  py::list out;
  for (const auto& [name, value] : result.logs) out.append(py::make_tuple(name, value));
  return out;
}

int64_t PythonModel::epochs_done() const {
  return trainer_ ? trainer_->initial_epoch() : 0;
}

py::list PythonModel::history() const {
  return trainer_ ? history_list(trainer_->history()) : py::list();
}

}  // namespace fg::python
