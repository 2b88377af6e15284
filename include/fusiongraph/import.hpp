// Importing models from other frameworks (docs/import.md): Keras files into a GraphDef and
// weights (import_keras_model, write_imported_model) and the per-node check of a graph
// against reference activations (read_reference, verify_against_reference).
#pragma once

#include "engine/import/keras_import.hpp"
#include "engine/import/reference.hpp"
