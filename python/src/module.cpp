// fusiongraph._core: the compiled half of the Python module (the public names are re-exported,
// with Keras's conventions, by python/fusiongraph/__init__.py; docs/python.md).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fusiongraph/fusiongraph.hpp>
#include <fusiongraph/training.hpp>

#include "errors.hpp"
#include "python_model.hpp"

namespace fg::python {

namespace {

// Without weights, a model starts from Keras-style initial weights of the graph's
// training.seed (else 0), as `graph-runner train` does, so that fit matches it.
// `precision` is a name ("f32", "bf16"); another is an fg::Error (GraphError) listing the choices.
LoadOptions load_options(const GraphDef& graph, const std::string& weights,
                         std::optional<uint64_t> init_seed, int threads, bool optimize,
                         const std::string& precision) {
  LoadOptions options;
  options.weights = weights;
  options.init_seed = init_seed;
  options.threads = threads;
  options.optimize = optimize;
  options.precision = parse_precision(precision);
  if (weights.empty() && !init_seed) {
    std::optional<int64_t> seed;
    if (graph.training) seed = parse_training_config(*graph.training).seed;
    options.init_seed = static_cast<uint64_t>(seed.value_or(0));
  }
  return options;
}

std::unique_ptr<PythonModel> load_file(const std::string& path, const std::string& weights,
                                       std::optional<uint64_t> init_seed, int threads,
                                       bool optimize, const std::string& precision) {
  py::gil_scoped_release released;
  std::shared_ptr<const GraphDef> graph = read_graph(path);
  return std::make_unique<PythonModel>(
      graph, load_options(*graph, weights, init_seed, threads, optimize, precision));
}

std::unique_ptr<PythonModel> load_text(const std::string& yaml, const std::string& weights,
                                       std::optional<uint64_t> init_seed, int threads,
                                       bool optimize, const std::string& file,
                                       const std::string& precision) {
  py::gil_scoped_release released;
  std::shared_ptr<const GraphDef> graph = read_graph_string(yaml, file);
  return std::make_unique<PythonModel>(
      graph, load_options(*graph, weights, init_seed, threads, optimize, precision));
}

std::vector<std::string> validate_file(const std::string& path) {
  std::vector<std::string> warnings;
  const std::shared_ptr<const CompiledGraph> graph = compile_file(path);  // alive for the loop
  for (const Diagnostic& d : graph->warnings()) warnings.push_back(d.format());
  return warnings;
}

void bind_fit_call(py::module_& m) {
  py::class_<FitCall>(m, "FitCall", "Settings of one fit call (internal).")
      .def(py::init<>())
      .def_readwrite("epochs", &FitCall::epochs)
      .def_readwrite("batch_size", &FitCall::batch_size)
      .def_readwrite("shuffle", &FitCall::shuffle)
      .def_readwrite("validation_split", &FitCall::validation_split)
      .def_readwrite("checkpoint", &FitCall::checkpoint)
      .def_readwrite("resume", &FitCall::resume)
      .def_readwrite("workers", &FitCall::workers)
      .def_readwrite("cache_dir", &FitCall::cache_dir)
      .def_readwrite("skip_bad_rows", &FitCall::skip_bad_rows)
      .def_readwrite("verbose", &FitCall::verbose);
}

}  // namespace

void bind_model(py::module_& m) {
  using M = PythonModel;
  py::class_<M>(m, "Model", "A compiled graph with its weights (internal: use fusiongraph.load).")
      .def_property_readonly("name", &M::name)
      .def_property_readonly("threads", &M::threads)
      .def_property_readonly("precision", &M::precision)
      .def("inputs", &M::inputs)
      .def("outputs", &M::outputs)
      .def("warnings", &M::warnings)
      .def("run", &M::run, py::arg("inputs"))
      .def("preprocess", &M::preprocess, py::arg("values"), py::arg("threads") = 1)
      .def("time_cpp_runs", &M::time_cpp_runs, py::arg("inputs"), py::arg("iterations"))
      .def("input_data_address", &M::input_data_address, py::arg("input"), py::arg("value"))
      .def("summary", &M::summary, py::arg("batch") = 0, py::arg("dims") = M::NullDims{})
      .def("summary_json", &M::summary_json, py::arg("batch") = 0, py::arg("dims") = M::NullDims{})
      .def("to_dot", &M::to_dot)
      .def("weights", &M::weights)
      .def("save", &M::save, py::arg("path"))
      .def("class_names", &M::class_names, py::arg("output"))
      .def("fit", &M::fit, py::arg("x"), py::arg("y"), py::arg("validation"), py::arg("callbacks"),
           py::arg("call"))
      .def("evaluate", &M::evaluate, py::arg("x"), py::arg("y"), py::arg("call"))
      .def("epochs_done", &M::epochs_done)
      .def("history", &M::history);
}

}  // namespace fg::python

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using namespace fg::python;
  m.doc() = "FusionGraph's compiled core (use the fusiongraph package).";
  bind_errors(m);
  bind_fit_call(m);
  bind_model(m);
  m.def("load", &load_file, py::arg("path"), py::arg("weights") = "",
        py::arg("init_seed") = py::none(), py::arg("threads") = 0, py::arg("optimize") = true,
        py::arg("precision") = "f32");
  m.def("load_string", &load_text, py::arg("yaml"), py::arg("weights") = "",
        py::arg("init_seed") = py::none(), py::arg("threads") = 0, py::arg("optimize") = true,
        py::arg("file") = "<string>", py::arg("precision") = "f32");
  m.def("precision_names", &fg::precision_names);
  m.def("validate", &validate_file, py::arg("path"));
  m.def("version", [] { return std::string(fg::version()); });
  // Keras's progress texts, for predict's bar (engine/training/progress_bar.hpp)
  m.def("progress_bar_text", &fg::progress_bar_text, py::arg("step"), py::arg("steps"));
  m.def("format_step_time", &fg::format_step_time, py::arg("seconds"));
  m.def("format_log_values", &fg::format_log_values, py::arg("logs"));
}
