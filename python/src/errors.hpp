// fusiongraph.GraphError: every fg::Error reaches Python as this subclass of ValueError, with
// the CLI's message and the error's fields as attributes (file, line, column, node, op, input,
// tensor, hint, message; None where the error does not know them).
#pragma once

#include <pybind11/pybind11.h>

namespace fg::python {

// Creates the exception type in `module` and registers the translator for fg::Error.
void bind_errors(pybind11::module_& module);

}  // namespace fg::python
