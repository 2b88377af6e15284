// The YAML an import writes (a graph a person would write: flow-style nodes in model order,
// attributes as the importer set them, which is only where they differ from the defaults, the
// importer's comments above the node they concern) and the checked, atomic writing of it with
// the weights.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "engine/file_io.hpp"
#include "engine/import/keras_import.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"

namespace fg {
namespace {

// A plain YAML scalar when it cannot be mistaken for another type or syntax, else quoted.
std::string yaml_string(const std::string& s) {
  bool plain = !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_');
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      plain = false;
  for (const char* word : {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "True",
                           "False", "Null", "NULL", "Yes", "No"})
    if (s == word) plain = false;
  if (plain) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string yaml_value(const Value& v) {
  switch (v.kind) {
    case Value::Kind::null:
      return "null";
    case Value::Kind::scalar:
      return v.quoted ? yaml_string(v.scalar) : v.scalar;
    case Value::Kind::list: {
      std::string out = "[";
      for (size_t i = 0; i < v.items.size(); ++i) out += (i ? ", " : "") + yaml_value(v.items[i]);
      return out + "]";
    }
    case Value::Kind::map: {
      std::string out = "{";
      for (size_t i = 0; i < v.entries.size(); ++i)
        out += (i ? ", " : "") + yaml_string(v.entries[i].first) + ": " +
               yaml_value(v.entries[i].second);
      return out + "}";
    }
  }
  return "null";
}

std::string yaml_dims(const Dims& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    out += (i ? ", " : "") + (dims[i] == kDynamic ? std::string("null") : std::to_string(dims[i]));
  return out + "]";
}

std::string yaml_names(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + yaml_string(names[i]);
  return out + "]";
}

std::string node_line(const NodeDef& n) {
  std::string line = fmt::format("  - {{name: {}, op: {}", yaml_string(n.name), n.op);
  if (n.inputs.size() == 1)
    line += ", input: " + yaml_string(n.inputs[0]);
  else
    line += ", inputs: " + yaml_names(n.inputs);
  if (!n.weights_of.empty()) line += ", weights_of: " + yaml_string(n.weights_of);
  // attributes in Keras's argument order for the keys most layers have, then the rest by name
  static const std::vector<std::string> first = {
      "units",   "filters",       "kernel_size", "pool_size", "strides",
      "padding", "dilation_rate", "activation",  "use_bias",  "return_sequences",
      "rate",    "dims",          "target_shape"};
  std::vector<std::string> keys;
  for (const std::string& k : first)
    if (n.attrs.count(k)) keys.push_back(k);
  for (const auto& [key, attr] : n.attrs)
    if (std::find(first.begin(), first.end(), key) == first.end()) keys.push_back(key);
  for (const std::string& key : keys)
    line += fmt::format(", {}: {}", key, yaml_value(n.attrs.at(key).value));
  if (!n.trainable) line += ", trainable: false";
  return line + "}\n";
}

// Long comments wrapped at about 96 columns.
void append_comment(std::string& out, const std::string& indent, const std::string& text) {
  std::string line = indent + "#";
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(pos, end - pos);
    if (line.size() + word.size() + 1 > 96 && line.size() > indent.size() + 1) {
      out += line + "\n";
      line = indent + "#";
    }
    line += " " + word;
    pos = end + 1;
  }
  out += line + "\n";
}

}  // namespace

std::string format_imported_yaml(const ImportedModel& model) {
  const GraphDef& g = *model.graph;
  std::string out;
  for (const std::string& h : model.header) append_comment(out, "", h);
  out += "name: " + yaml_string(g.name) + "\ninputs:\n";
  for (const InputDef& in : g.inputs) {
    out += fmt::format("  {}: {{shape: {}{}}}", yaml_string(in.name), yaml_dims(in.shape),
                       in.dtype == DType::i32 ? ", dtype: int32" : "");
    auto c = model.input_comments.find(in.name);
    out += c == model.input_comments.end() ? "\n" : "  # " + c->second + "\n";
  }
  out += "nodes:\n";
  for (const NodeDef& n : g.nodes) {
    auto c = model.node_comments.find(n.name);
    if (c != model.node_comments.end())
      for (const std::string& text : c->second) append_comment(out, "  ", text);
    out += node_line(n);
  }
  out += "outputs: " + yaml_names(g.outputs) + "\n";
  return out;
}

void write_imported_model(const ImportedModel& model, const std::string& graph_path,
                          const std::string& weights_path) {
  check_file_destination(graph_path, "--graph");
  check_file_destination(weights_path, "--weights");
  if (std::filesystem::absolute(graph_path) == std::filesystem::absolute(weights_path))
    throw Error("--graph and --weights name the same file").in_file(graph_path);
  const std::string yaml = format_imported_yaml(model);
  // What is written reads back into a graph that compiles and takes these weights.
  const CompiledGraph graph = compile_graph(load_graph_string(yaml, graph_path), builtin_ops());
  model.weights.validate(graph);
  // The weights go to a temporary beside their destination first, so that a failing YAML
  // write leaves both destinations as they were.
  const std::string tmp = weights_path + ".import-tmp";
  model.weights.save_safetensors(tmp);
  try {
    write_file_atomic(graph_path, {yaml});
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, weights_path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(fmt::format("cannot move the weights into place: {}", ec.message()))
        .in_file(weights_path);
  }
}

}  // namespace fg
