// Reference activations for `graph-runner verify`: the inputs a model was fed and each layer's
// output as the original framework computed them, read from
//   - a folder of <name>.npy files,
//   - an .npz archive (a zip of <name>.npy entries, stored or deflated; read with libzip),
//   - an HDF5 file with the groups inputs/, activations/ and predictions/, as the Keras
//     fixtures' <model>_inputs_and_outputs.h5 (their outputs/ group, the training targets, is
//     not a reference);
// and the node-by-node comparison of a graph's outputs with them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "kernels/tensor.hpp"

namespace fg {

struct ReferenceSet {
  std::string source;
  // Inputs by name (from an HDF5 reference's inputs/); for .npy folders and .npz archives the
  // arrays named like a graph input become inputs when verifying.
  std::map<std::string, Tensor> inputs;
  std::map<std::string, Tensor> activations;  // by layer / node name
};

// Reads a folder, an .npz or an HDF5 reference (recognised by its contents). Throws fg::Error.
ReferenceSet read_reference(const std::string& path);

struct VerifyTolerance {
  double rtol = 1e-4, atol = 1e-5;
};

struct VerifyRow {
  std::string node;
  Dims shape;  // the node's output shape
  double max_abs = 0;
  // max |got - want| / |want| over the elements where |want| >= atol
  double max_rel = 0;
  bool ok = true;
  std::string problem;  // "" or e.g. "shape [2, 4] vs the reference's [2, 5]"
};

struct VerifyReport {
  std::vector<VerifyRow> rows;            // compared nodes, in schedule order
  std::vector<std::string> not_compared;  // nodes without a reference array
  std::vector<std::string> unused;        // reference arrays naming no node or input
  std::vector<std::string> notes;         // e.g. how an input was bound
  std::string first_divergence;           // "" when every row is ok
  bool ok() const { return first_divergence.empty(); }
};

// Runs `model` (best unoptimized, so every node's output exists) on the reference's inputs and
// compares every node's output with the reference array of the same name: ok when
// |got - want| <= atol + rtol * |want| everywhere. A single graph input takes a single
// reference input of another name (Keras names a Sequential model's input itself). Throws
// fg::Error when an input is missing or nothing could be compared.
VerifyReport verify_against_reference(const Model& model, ReferenceSet reference,
                                      const VerifyTolerance& tolerance = {});

}  // namespace fg
