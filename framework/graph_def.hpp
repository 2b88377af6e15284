// The graph IR as read from a file: inputs, nodes with their attributes (each value keeps its
// source position), outputs. Nothing here knows YAML: importers can build a GraphDef too.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "framework/error.hpp"
#include "framework/shape.hpp"

namespace fg {

// An attribute value: a scalar (kept as its text), a list, a map, or null.
struct Value {
  enum class Kind { null, scalar, list, map };
  Kind kind = Kind::null;
  std::string scalar;
  bool quoted = false;  // the scalar was written in quotes (so `"3"` is a string, not a number)
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> entries;
  SourceLoc loc;

  std::string describe() const;  // "the list [3, 3]", "the string 'relu'", ...
};

struct Attr {
  Value value;
  SourceLoc key_loc;
};

struct NodeDef {
  std::string name;
  std::string op;
  SourceLoc loc;     // the node's mapping
  SourceLoc op_loc;  // the op value
  std::vector<std::string> inputs;
  std::vector<SourceLoc> input_locs;
  std::map<std::string, Attr> attrs;  // everything but name / op / input / inputs / trainable
  bool trainable = true;              // `trainable: false` freezes the node's weights
  SourceLoc trainable_loc;
  // `weights_of: <node>`: the node has no weights of its own and uses that node's (a Keras
  // layer called more than once); the compiler checks that both nodes' weights agree.
  std::string weights_of;
  SourceLoc weights_of_loc;
};

// The node whose weights `n` uses: its own name, or the node named by `weights_of`. Weight
// keys are "<weights_node(n)>.<param>".
inline const std::string& weights_node(const NodeDef& n) {
  return n.weights_of.empty() ? n.name : n.weights_of;
}

struct InputDef {
  std::string name;
  Dims shape;  // without the batch; kDynamic for null
  DType dtype = DType::f32;
  Dims default_shape;  // optional: sizes graph-runner uses for null dims when no --dim is given
  SourceLoc loc;
  // `preprocessing:` as written (parsed by framework/preprocessing.hpp).
  std::optional<Value> preprocessing;
};

struct GraphDef {
  std::string name;
  std::string file;  // for messages
  std::vector<InputDef> inputs;
  std::vector<NodeDef> nodes;  // file order
  std::vector<std::string> outputs;
  std::vector<SourceLoc> output_locs;
  // Per output (same order as `outputs`): `preprocessing:` as written when `outputs` is a map
  // `{name: {preprocessing: ...}}` (framework/preprocessing.hpp).
  std::vector<std::optional<Value>> output_preprocessing;
  // The `training:` section as written (parsed by framework/training_config.hpp).
  std::optional<Value> training;
};

}  // namespace fg
