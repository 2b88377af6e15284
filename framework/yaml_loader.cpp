// YAML -> GraphDef. yaml-cpp gives every node a Mark (0-based line/column); we keep them
// 1-based in SourceLoc so every later error can point at the text a person must change.
#include "framework/yaml_loader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <sstream>

#include "framework/regular_file.hpp"
#include "framework/training_config.hpp"

namespace fg {

namespace {

SourceLoc loc_of(const YAML::Node& n, const std::string& file) {
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return SourceLoc{file, 0, 0};
  return SourceLoc{file, m.line + 1, m.column + 1};
}

Error error_at(const YAML::Node& n, const std::string& file, const std::string& message) {
  Error e(message);
  e.at(loc_of(n, file));
  return e;
}

// A scalar written as a string (quoted, `!` or `!!str`): never read as a number or a bool.
bool string_tagged(const YAML::Node& n) {
  return n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str";
}

// Checks the event stream before any node is built: one document only, no aliases (an alias
// repeated inside aliases expands exponentially: a few hundred bytes can stand for gigabytes).
class StreamChecker : public YAML::EventHandler {
 public:
  explicit StreamChecker(std::string file) : file_(std::move(file)) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1)
      throw Error("a graph file holds one YAML document; text follows the first one")
          .at(at(mark))
          .hint("remove the `---` or `...` line and what follows it, or put it in its own file");
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { reject(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { check(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    check(mark, anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    check(mark, anchor);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    check(mark, anchor);
  }
  void OnMapEnd() override {}

 private:
  void check(const YAML::Mark& mark, YAML::anchor_t anchor) const {
    if (anchor != YAML::NullAnchor) reject(mark);
  }
  [[noreturn]] void reject(const YAML::Mark& mark) const {
    throw Error("YAML anchors and aliases (&name, *name) are not allowed in graph files")
        .at(at(mark))
        .hint(
            "write the value out where it is used (aliases can expand a small file without "
            "bound); see docs/limits.md");
  }
  SourceLoc at(const YAML::Mark& mark) const {
    return SourceLoc{file_, mark.line + 1, mark.column + 1};
  }
  std::string file_;
  int documents_ = 0;
};

Value to_value(const YAML::Node& n, const std::string& file) {
  Value v;
  v.loc = loc_of(n, file);
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      v.kind = Value::Kind::null;
      break;
    case YAML::NodeType::Scalar:
      v.kind = Value::Kind::scalar;
      v.scalar = n.Scalar();
      v.quoted = string_tagged(n);
      // `null` / `~` written as plain scalars are nulls (yaml-cpp reports them as Null already)
      break;
    case YAML::NodeType::Sequence:
      v.kind = Value::Kind::list;
      for (const auto& item : n) v.items.push_back(to_value(item, file));
      break;
    case YAML::NodeType::Map:
      v.kind = Value::Kind::map;
      for (const auto& kv : n) v.entries.emplace_back(kv.first.Scalar(), to_value(kv.second, file));
      break;
  }
  return v;
}

void check_map(const YAML::Node& n, const std::string& file, const std::string& what) {
  if (!n.IsMap()) {
    std::string found = n.IsSequence() ? "a list"
                        : n.IsScalar() ? fmt::format("'{}'", n.Scalar())
                                       : "nothing";
    throw error_at(n, file, fmt::format("{} must be a mapping, got {}", what, found));
  }
}

// Rejects keys outside `known` (with a did-you-mean) and duplicate keys.
void check_keys(const YAML::Node& map, const std::string& file,
                const std::vector<std::string>& known, const std::string& where) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (!seen.insert(key).second)
      throw error_at(kv.first, file, fmt::format("duplicate key '{}' in {}", key, where));
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      Error e = error_at(kv.first, file, fmt::format("unknown key '{}' in {}", key, where));
      std::string best = closest_match(key, known);
      e.hint(best.empty() ? "known keys: " + quoted_list(known)
                          : fmt::format("did you mean '{}'?", best));
      throw e;
    }
  }
}

std::string scalar_of(const YAML::Node& n, const std::string& file, const std::string& what) {
  if (!n.IsScalar() || n.Scalar().empty())
    throw error_at(n, file, fmt::format("{} must be a name (a string)", what));
  return n.Scalar();
}

void check_name(const YAML::Node& n, const std::string& file, const std::string& name,
                const std::string& what) {
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      throw error_at(n, file,
                     fmt::format("{} '{}' may only use letters, digits, '_' and '-'", what, name))
          .hint("weights are addressed as <node>.<param>, so names cannot contain '.' or spaces");
  }
  if (name.rfind("__", 0) == 0)
    throw error_at(n, file, fmt::format("{} '{}' starts with '__', which is reserved", what, name))
        .hint(
            "checkpoints keep their training state under keys starting with '__training__.'; "
            "rename it");
}

InputDef parse_input(const std::string& name, const YAML::Node& key, const YAML::Node& spec,
                     const std::string& file) {
  InputDef in;
  in.name = name;
  in.loc = loc_of(key, file);
  check_name(key, file, name, "input name");
  check_map(spec, file, fmt::format("input '{}'", name));
  check_keys(spec, file, {"shape", "dtype", "default_shape", "preprocessing"},
             fmt::format("input '{}'", name));
  // Kept as written; framework/preprocessing.hpp validates it when the graph is compiled.
  if (YAML::Node preprocessing = spec["preprocessing"])
    in.preprocessing = to_value(preprocessing, file);
  YAML::Node shape = spec["shape"];
  if (!shape)
    throw error_at(spec, file, fmt::format("input '{}' has no shape", name))
        .hint(
            "add `shape: [...]` without the batch dimension, e.g. shape: [224, 224, 3]; use null "
            "for any length");
  if (!shape.IsSequence() || shape.size() == 0)
    throw error_at(
        shape, file,
        fmt::format(
            "the shape of input '{}' must be a non-empty list of sizes (null for any length)",
            name))
        .hint("the batch dimension is implicit: write shape: [224, 224, 3] for images");
  for (const auto& d : shape) {
    if (d.IsNull()) {
      in.shape.push_back(kDynamic);
      continue;
    }
    int64_t v = 0;
    try {
      if (string_tagged(d)) throw YAML::Exception(d.Mark(), "a string");
      v = d.as<int64_t>();
    } catch (const YAML::Exception&) {
      throw error_at(
          d, file,
          fmt::format("a dimension of input '{}' must be a positive integer or null, got '{}'",
                      name, d.Scalar()));
    }
    if (v < 1)
      throw error_at(
          d, file,
          fmt::format("a dimension of input '{}' must be a positive integer or null, got {}", name,
                      v));
    in.shape.push_back(v);
  }
  if (YAML::Node example = spec["default_shape"]) {
    if (!example.IsSequence() || example.size() != in.shape.size())
      throw error_at(
          example, file,
          fmt::format("default_shape of input '{}' must be a list of {} sizes like its shape", name,
                      in.shape.size()));
    size_t k = 0;
    for (const auto& d : example) {
      int64_t v = 0;
      try {
        v = d.as<int64_t>();
      } catch (const YAML::Exception&) {
        v = 0;
      }
      if (v < 1 || (in.shape[k] != kDynamic && in.shape[k] != v))
        throw error_at(d, file,
                       fmt::format("default_shape of input '{}' must give a positive size for each "
                                   "dim, equal to the shape's fixed sizes",
                                   name));
      in.default_shape.push_back(v);
      ++k;
    }
  }
  if (YAML::Node dtype = spec["dtype"]) {
    std::string s = scalar_of(dtype, file, "dtype");
    if (s == "float32")
      in.dtype = DType::f32;
    else if (s == "int32")
      in.dtype = DType::i32;
    else {
      Error e = error_at(dtype, file, fmt::format("unknown dtype '{}' for input '{}'", s, name));
      std::string best = closest_match(s, {"float32", "int32"});
      e.hint(best.empty() ? "use float32 or int32" : fmt::format("did you mean '{}'?", best));
      throw e;
    }
  }
  return in;
}

bool parse_trainable(const YAML::Node& n, const std::string& file) {
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  throw error_at(n, file, "`trainable` must be true or false");
}

NodeDef parse_node(const YAML::Node& n, const std::string& file, size_t index) {
  NodeDef node;
  node.loc = loc_of(n, file);
  check_map(n, file, fmt::format("node #{} in `nodes`", index + 1));
  std::set<std::string> seen;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (!seen.insert(key).second)
      throw error_at(kv.first, file, fmt::format("duplicate key '{}' in node #{}", key, index + 1));
  }
  YAML::Node name = n["name"];
  if (!name)
    throw error_at(n, file, fmt::format("node #{} has no name", index + 1))
        .hint("add `name: <unique name>`");
  node.name = scalar_of(name, file, "a node's name");
  check_name(name, file, node.name, "node name");
  YAML::Node op = n["op"];
  if (!op)
    throw error_at(n, file, fmt::format("node '{}' has no op", node.name))
        .hint("add `op: <op name>`, e.g. op: dense");
  node.op = scalar_of(op, file, "op");
  node.op_loc = loc_of(op, file);
  YAML::Node input = n["input"], inputs = n["inputs"];
  if (input && inputs)
    throw error_at(inputs, file, fmt::format("node '{}' has both `input` and `inputs`", node.name))
        .node(node.name, node.op)
        .hint("use `input: x` for one input or `inputs: [a, b]` for several");
  if (input) {
    if (input.IsSequence())
      throw error_at(input, file, "`input` takes one name")
          .node(node.name, node.op)
          .hint("use `inputs: [a, b]` for several inputs");
    node.inputs.push_back(scalar_of(input, file, "input"));
    node.input_locs.push_back(loc_of(input, file));
  } else if (inputs) {
    if (inputs.IsScalar()) {
      node.inputs.push_back(inputs.Scalar());
      node.input_locs.push_back(loc_of(inputs, file));
    } else if (inputs.IsSequence() && inputs.size() > 0) {
      for (const auto& i : inputs) {
        node.inputs.push_back(scalar_of(i, file, "an entry of inputs"));
        node.input_locs.push_back(loc_of(i, file));
      }
    } else {
      throw error_at(inputs, file, "`inputs` must be a non-empty list of names")
          .node(node.name, node.op);
    }
  } else {
    throw error_at(n, file, fmt::format("node '{}' has no input", node.name))
        .node(node.name, node.op)
        .hint("add `input: <node or input name>`");
  }
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (key == "name" || key == "op" || key == "input" || key == "inputs") continue;
    if (key == "trainable") {
      node.trainable = parse_trainable(kv.second, file);
      node.trainable_loc = loc_of(kv.second, file);
      continue;
    }
    if (key == "weights_of") {
      node.weights_of = scalar_of(kv.second, file, "weights_of");
      node.weights_of_loc = loc_of(kv.second, file);
      continue;
    }
    node.attrs[key] = Attr{to_value(kv.second, file), loc_of(kv.first, file)};
  }
  return node;
}

// `outputs:` a name, a list of names, or a mapping `{name: {preprocessing: {...}}}` (an entry
// may be `{}` or null). output_preprocessing gets one entry per output either way.
void parse_outputs(const YAML::Node& outputs, const std::string& file, GraphDef& g) {
  if (outputs.IsMap() && outputs.size() > 0) {
    std::set<std::string> seen;
    for (const auto& kv : outputs) {
      const std::string name = scalar_of(kv.first, file, "an output");
      if (!seen.insert(name).second)
        throw error_at(kv.first, file, fmt::format("duplicate output '{}'", name));
      g.outputs.push_back(name);
      g.output_locs.push_back(loc_of(kv.first, file));
      g.output_preprocessing.emplace_back();
      if (kv.second.IsNull()) continue;
      check_map(kv.second, file, fmt::format("output '{}'", name));
      check_keys(kv.second, file, {"preprocessing"}, fmt::format("output '{}'", name));
      if (YAML::Node preprocessing = kv.second["preprocessing"])
        g.output_preprocessing.back() = to_value(preprocessing, file);
    }
    return;
  }
  if (outputs.IsScalar()) {
    g.outputs.push_back(outputs.Scalar());
    g.output_locs.push_back(loc_of(outputs, file));
  } else if (outputs.IsSequence() && outputs.size() > 0) {
    for (const auto& o : outputs) {
      g.outputs.push_back(scalar_of(o, file, "an output"));
      g.output_locs.push_back(loc_of(o, file));
    }
  } else {
    throw error_at(outputs, file, "`outputs` must be a non-empty list of node names")
        .hint("or a mapping `{<node name>: {preprocessing: {type: category}}}`");
  }
  g.output_preprocessing.resize(g.outputs.size());
}

std::shared_ptr<GraphDef> parse_root(const YAML::Node& root, const std::string& file) {
  auto g = std::make_shared<GraphDef>();
  g->file = file;
  if (!root.IsDefined() || root.IsNull())
    throw Error("the graph file is empty")
        .in_file(file)
        .hint("a graph has `name`, `inputs`, `nodes` and `outputs`");
  check_map(root, file, "a graph file");
  check_keys(root, file, {"name", "description", "inputs", "nodes", "outputs", "training"},
             "the graph");
  if (YAML::Node name = root["name"]) g->name = scalar_of(name, file, "the graph's name");
  YAML::Node inputs = root["inputs"];
  if (!inputs)
    throw error_at(root, file, "the graph has no `inputs`")
        .hint("add e.g. `inputs: {image: {shape: [224, 224, 3]}}`");
  check_map(inputs, file, "`inputs`");
  if (inputs.size() == 0) throw error_at(inputs, file, "`inputs` is empty");
  std::set<std::string> seen;
  for (const auto& kv : inputs) {
    std::string name = scalar_of(kv.first, file, "an input name");
    if (!seen.insert(name).second)
      throw error_at(kv.first, file, fmt::format("duplicate input '{}'", name));
    g->inputs.push_back(parse_input(name, kv.first, kv.second, file));
  }
  YAML::Node nodes = root["nodes"];
  if (!nodes)
    throw error_at(root, file, "the graph has no `nodes`")
        .hint("add `nodes:` with a list of `{name, op, input, ...}`");
  if (!nodes.IsSequence() || nodes.size() == 0)
    throw error_at(nodes, file, "`nodes` must be a non-empty list")
        .hint("each entry is a mapping like `- {name: d, op: dense, input: x, units: 10}`");
  if (nodes.size() > kMaxGraphNodes)
    throw error_at(nodes, file,
                   fmt::format("the graph has {} nodes, more than the limit of {}", nodes.size(),
                               kMaxGraphNodes))
        .hint("see docs/limits.md");
  size_t i = 0;
  for (const auto& n : nodes) g->nodes.push_back(parse_node(n, file, i++));
  YAML::Node outputs = root["outputs"];
  if (!outputs)
    throw error_at(root, file, "the graph has no `outputs`").hint("add `outputs: [<node name>]`");
  parse_outputs(outputs, file, *g);
  if (YAML::Node training = root["training"]) {
    g->training = to_value(training, file);
    parse_training_config(*g->training);  // reject a malformed section when the file is read
  }
  return g;
}

}  // namespace

std::shared_ptr<GraphDef> load_graph_string(const std::string& text, const std::string& file) {
  if (text.size() > kMaxGraphFileBytes)
    throw Error(fmt::format("the graph has {} bytes, more than the limit of {} bytes", text.size(),
                            kMaxGraphFileBytes))
        .in_file(file)
        .hint("see docs/limits.md");
  YAML::Node root;
  try {
    {
      std::istringstream stream(text);
      YAML::Parser parser(stream);
      StreamChecker checker(file);
      while (parser.HandleNextDocument(checker)) {
      }
    }
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    Error err(fmt::format("YAML syntax error: {}", e.msg));
    err.at(SourceLoc{file, e.mark.line + 1, e.mark.column + 1});
    if (e.msg.find("end of map flow") != std::string::npos)
      err.hint("a '{' opened before this point is not closed with '}'");
    else if (e.msg.find("end of sequence flow") != std::string::npos)
      err.hint("a '[' opened before this point is not closed with ']'");
    else if (e.msg.find("illegal map value") != std::string::npos ||
             e.msg.find("bad indentation") != std::string::npos)
      err.hint("check the indentation: keys of one mapping must start in the same column");
    throw err;
  }
  try {
    return parse_root(root, file);
  } catch (const YAML::Exception& e) {
    Error err(fmt::format("malformed graph: {}", e.msg));
    err.at(SourceLoc{file, e.mark.line + 1, e.mark.column + 1});
    throw err;
  }
}

std::shared_ptr<GraphDef> load_graph_file(const std::string& path) {
  std::string text;
  try {
    text = read_regular_file(path, kMaxGraphFileBytes);
  } catch (Error& e) {
    if (e.message().rfind("cannot open", 0) == 0)
      throw Error("cannot open the graph file: " + e.message().substr(e.message().find(": ") + 2))
          .in_file(path)
          .hint("check the path");
    throw;
  }
  return load_graph_string(text, path);
}

}  // namespace fg
