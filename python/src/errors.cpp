#include "errors.hpp"

#include <fusiongraph/fusiongraph.hpp>
#include <new>
#include <string>

namespace fg::python {

namespace py = pybind11;

namespace {

PyObject* graph_error_type = nullptr;

py::object text_or_none(const std::string& s) {
  return s.empty() ? py::none() : py::object(py::str(s));
}
py::object number_or_none(int n) {
  return n > 0 ? py::object(py::int_(n)) : py::none();
}

// The exception object: the formatted message as its argument, the fields as attributes.
void raise_graph_error(const Error& e) {
  py::object type = py::reinterpret_borrow<py::object>(graph_error_type);
  py::object exc = type(py::str(e.what()));
  exc.attr("message") = py::str(e.message());
  exc.attr("file") = text_or_none(e.loc().file);
  exc.attr("line") = number_or_none(e.loc().line);
  exc.attr("column") = number_or_none(e.loc().column);
  exc.attr("node") = text_or_none(e.node_name());
  exc.attr("op") = text_or_none(e.op_name());
  exc.attr("input") = e.input_index() >= 0 ? py::object(py::int_(e.input_index())) : py::none();
  exc.attr("tensor") = text_or_none(e.tensor_name());
  exc.attr("hint") = text_or_none(e.hint_text());
  PyErr_SetObject(graph_error_type, exc.ptr());
}

}  // namespace

void bind_errors(py::module_& module) {
  graph_error_type = PyErr_NewExceptionWithDoc(
      "fusiongraph.GraphError",
      "A FusionGraph error: the graph, its weights, a data file or an argument is wrong.\n\n"
      "str(error) is graph-runner's message (file:line:column: error: node 'n' (op): ...,\n"
      "then the hint). Attributes: message, file, line, column, node, op, input (the node's\n"
      "input index), tensor (a graph input or weight name), hint; None when not known.",
      PyExc_ValueError, nullptr);
  if (graph_error_type == nullptr) throw py::error_already_set();
  module.attr("GraphError") = py::reinterpret_borrow<py::object>(graph_error_type);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise_graph_error(e);
    }
  });
}

}  // namespace fg::python
