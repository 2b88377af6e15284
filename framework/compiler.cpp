// GraphDef -> CompiledGraph: op lookup and attribute parsing, reference checks, a deterministic
// topological schedule (file order breaks ties), cycle reports, symbolic shape inference.
#include "framework/compiler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

#include "framework/preprocessing.hpp"
#include "framework/training_config.hpp"

namespace fg {

namespace {

Error at_node(Error e, const NodeDef& n) {
  if (e.node_name().empty()) e.node(n.name, n.op);
  if (!e.loc().known()) e.at(n.loc);
  return e;
}

// Reports the nodes of one cycle among `remaining` (node indices not scheduled).
std::string describe_cycle(const GraphDef& def, const std::vector<std::vector<int>>& preds,
                           const std::vector<bool>& remaining, int& first) {
  // Walk predecessors inside `remaining` until a node repeats.
  int start = -1;
  for (size_t i = 0; i < remaining.size(); ++i)
    if (remaining[i]) {
      start = static_cast<int>(i);
      break;
    }
  std::vector<int> path;
  std::vector<int> seen_at(def.nodes.size(), -1);
  int cur = start;
  while (seen_at[cur] < 0) {
    seen_at[cur] = static_cast<int>(path.size());
    path.push_back(cur);
    int next = -1;
    for (int p : preds[cur])
      if (p >= 0 && remaining[p]) {
        next = p;
        break;
      }
    cur = next;
  }
  std::vector<int> cycle(path.begin() + seen_at[cur], path.end());
  std::reverse(cycle.begin(), cycle.end());  // producer -> consumer order
  auto lowest = std::min_element(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), lowest, cycle.end());
  first = cycle.front();
  std::string out;
  for (int i : cycle) out += def.nodes[i].name + " -> ";
  return out + def.nodes[cycle.front()].name;
}

}  // namespace

namespace {

// Inputs and nodes share one namespace.
struct Names {
  std::map<std::string, int> input_index, node_index;
  std::vector<std::string> all;  // inputs, then nodes, for "did you mean"
};

Names check_names(const GraphDef& def) {
  Names names;
  for (size_t i = 0; i < def.inputs.size(); ++i)
    names.input_index[def.inputs[i].name] = static_cast<int>(i);
  for (size_t i = 0; i < def.nodes.size(); ++i) {
    const NodeDef& n = def.nodes[i];
    if (names.input_index.count(n.name))
      throw Error(fmt::format("node name '{}' is already the name of a graph input", n.name))
          .at(n.loc)
          .node(n.name, n.op)
          .hint("rename the node");
    auto [it, fresh] = names.node_index.emplace(n.name, static_cast<int>(i));
    if (!fresh) {
      const NodeDef& first = def.nodes[it->second];
      throw Error(fmt::format("duplicate node name '{}' (first defined at line {})", n.name,
                              first.loc.line))
          .at(n.loc)
          .node(n.name, n.op)
          .hint("every node needs a unique name");
    }
  }
  for (const auto& in : def.inputs) names.all.push_back(in.name);
  for (const auto& n : def.nodes) names.all.push_back(n.name);
  return names;
}

// The first attribute of `n` that parsing did not read, as an error with a suggestion.
std::optional<Error> unknown_attribute(const NodeDef& n, const AttrReader& reader) {
  const auto& used = reader.used_keys();
  for (const auto& [key, attr] : n.attrs) {
    if (std::find(used.begin(), used.end(), key) != used.end()) continue;
    Error e(fmt::format("unknown attribute '{}' for op '{}'", key, n.op));
    e.at(attr.key_loc).node(n.name, n.op);
    std::string best = closest_match(key, used);
    e.hint(best.empty() ? (used.empty() ? std::string("this op takes no attributes")
                                        : "known attributes: " + quoted_list(used))
                        : fmt::format("did you mean '{}'?", best));
    return e;
  }
  return std::nullopt;
}

// Looks up the node's op and parses its attributes; rejects unknown ops and attributes.
std::unique_ptr<Op> parse_node(const NodeDef& n, const OpRegistry& registry) {
  const OpInfo* info = registry.find(n.op);
  if (info == nullptr) {
    Error e(fmt::format("unknown op '{}'", n.op));
    e.at(n.op_loc).node(n.name, n.op);
    std::string best = closest_match(n.op, registry.names());
    e.hint(best.empty() ? "known ops: " + quoted_list(registry.names())
                        : fmt::format("did you mean '{}'?", best));
    throw e;
  }
  std::unique_ptr<Op> op = info->create();
  AttrReader reader(n);
  try {
    op->parse(reader);
  } catch (Error& e) {
    // A misspelt key often shows up first as a missing required one: report the misspelling.
    // (Only then: when parse stops early on another error, keys not read yet are not unknown.)
    if (e.message().rfind("missing required attribute", 0) == 0)
      if (auto unknown = unknown_attribute(n, reader);
          unknown && !unknown->hint_text().empty() &&
          unknown->hint_text().rfind("did you mean", 0) == 0)
        throw *unknown;
    throw at_node(e, n);
  }
  if (auto unknown = unknown_attribute(n, reader)) throw *unknown;
  return op;
}

// Every node's predecessors (node index, or -1 for a graph input); checks the outputs too.
std::vector<std::vector<int>> resolve_references(const GraphDef& def, const Names& names) {
  std::vector<std::vector<int>> preds(def.nodes.size());
  for (size_t i = 0; i < def.nodes.size(); ++i) {
    const NodeDef& n = def.nodes[i];
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const std::string& ref = n.inputs[k];
      if (auto it = names.node_index.find(ref); it != names.node_index.end()) {
        preds[i].push_back(it->second);
      } else if (names.input_index.count(ref)) {
        preds[i].push_back(-1);
      } else {
        Error e(fmt::format("input '{}' is not a node or a graph input", ref));
        e.at(n.input_locs[k]).node(n.name, n.op).input(static_cast<int>(k));
        std::string best = closest_match(ref, names.all);
        e.hint(best.empty() ? "known names: " + quoted_list(names.all)
                            : fmt::format("did you mean '{}'?", best));
        throw e;
      }
      if (ref == n.name)
        throw Error(fmt::format("node '{}' takes its own output as input", n.name))
            .at(n.input_locs[k])
            .node(n.name, n.op)
            .hint("a graph cannot have cycles");
    }
  }
  for (size_t k = 0; k < def.outputs.size(); ++k) {
    const std::string& o = def.outputs[k];
    if (!names.node_index.count(o) && !names.input_index.count(o)) {
      Error e(fmt::format("output '{}' is not a node or a graph input", o));
      e.at(def.output_locs[k]);
      std::string best = closest_match(o, names.all);
      if (!best.empty()) e.hint(fmt::format("did you mean '{}'?", best));
      throw e;
    }
    for (size_t j = 0; j < k; ++j)
      if (def.outputs[j] == o)
        throw Error(fmt::format("output '{}' is listed twice", o)).at(def.output_locs[k]);
  }
  return preds;
}

// Kahn's algorithm, the ready node earliest in the file first; a cycle is an error naming it.
std::vector<int> schedule(const GraphDef& def, const std::vector<std::vector<int>>& preds) {
  std::vector<int> pending(def.nodes.size(), 0);
  std::vector<std::vector<int>> succs(def.nodes.size());
  for (size_t i = 0; i < def.nodes.size(); ++i)
    for (int p : preds[i])
      if (p >= 0) {
        ++pending[i];
        succs[p].push_back(static_cast<int>(i));
      }
  std::set<int> ready;
  for (size_t i = 0; i < def.nodes.size(); ++i)
    if (pending[i] == 0) ready.insert(static_cast<int>(i));
  std::vector<int> order;
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (int s : succs[i])
      if (--pending[s] == 0) ready.insert(s);
  }
  if (order.size() != def.nodes.size()) {
    std::vector<bool> remaining(def.nodes.size(), true);
    for (int i : order) remaining[i] = false;
    int first = 0;
    std::string cycle = describe_cycle(def, preds, remaining, first);
    throw Error(fmt::format("the graph has a cycle: {}", cycle))
        .at(def.nodes[first].loc)
        .node(def.nodes[first].name, def.nodes[first].op)
        .hint("a node cannot depend on its own output; check the `input`/`inputs` of these nodes");
  }
  return order;
}

// A masked input reaching an op that cannot carry the mask is an error at that input.
void check_masks(const CompiledNode& cn, const std::vector<TensorType>& in_types) {
  const NodeDef& n = *cn.def;
  for (size_t k = 0; k < in_types.size(); ++k) {
    if (in_types[k].masked && !cn.op->supports_masking())
      throw Error(
          fmt::format("op '{}' does not support masking, but input '{}' carries a mask (from an "
                      "embedding with mask_zero: true)",
                      n.op, n.inputs[k]))
          .at(n.input_locs[k])
          .node(n.name, n.op)
          .input(static_cast<int>(k))
          .hint(
              "set mask_zero: false on the embedding, or consume the mask first (lstm, gru, "
              "global_average_pooling1d)");
  }
}

// Each inferred output (and each weight) within kMaxTensorBytes, for what is already known.
void check_node_sizes(const NodeDef& n, const std::vector<TensorType>& outs) {
  for (size_t k = 0; k < outs.size(); ++k)
    if (!tensor_bytes_within_limit(outs[k].shape, outs[k].dtype))
      throw at_node(Error(fmt::format("the output{} of shape {} would need more than {} bytes "
                                      "(2^40, 1 TiB), the largest tensor FusionGraph supports",
                                      outs.size() > 1 ? fmt::format(" {}", k) : std::string(),
                                      format_shape(outs[k].shape), kMaxTensorBytes))
                        .hint("see docs/limits.md"),
                    n);
}

// The graph's tensors and nodes in schedule order, with inferred (symbolic) types.
struct Inferred {
  std::vector<CompiledNode> nodes;
  std::vector<TensorInfo> tensors;
  std::vector<int> input_tensors, output_tensors;
};

Inferred infer_graph(const GraphDef& def, std::vector<std::unique_ptr<Op>> ops,
                     const std::vector<int>& order) {
  Inferred g;
  std::map<std::string, int> tensor_of;
  std::vector<std::set<std::string>> branches;  // per tensor: graph inputs it descends from
  for (size_t i = 0; i < def.inputs.size(); ++i) {
    const InputDef& in = def.inputs[i];
    TensorInfo t;
    t.name = in.name;
    t.type.shape = {kDynamic};
    t.type.shape.insert(t.type.shape.end(), in.shape.begin(), in.shape.end());
    t.type.dtype = in.dtype;
    t.input_index = static_cast<int>(i);
    try {
      check_tensor_size(t.type.shape, t.type.dtype, "the input");
    } catch (Error& e) {
      throw e.at(in.loc).tensor(in.name);
    }
    tensor_of[in.name] = static_cast<int>(g.tensors.size());
    g.input_tensors.push_back(static_cast<int>(g.tensors.size()));
    g.tensors.push_back(t);
    branches.push_back({in.name});
  }
  for (int idx : order) {
    const NodeDef& n = def.nodes[idx];
    CompiledNode cn;
    cn.def = &n;
    cn.op = std::move(ops[idx]);
    std::vector<TensorType> in_types;
    std::set<std::string> branch;
    for (const auto& ref : n.inputs) {
      int t = tensor_of.at(ref);
      cn.inputs.push_back(t);
      in_types.push_back(g.tensors[t].type);
      branch.insert(branches[t].begin(), branches[t].end());
    }
    check_masks(cn, in_types);
    InferContext ctx(n, in_types, n.inputs);
    std::vector<TensorType> out_types;
    try {
      out_types = cn.op->infer(ctx);
    } catch (Error& e) {
      throw at_node(e, n);
    }
    if (out_types.empty())
      throw Error("internal: the op inferred no output").at(n.loc).node(n.name, n.op);
    check_node_sizes(n, out_types);
    for (size_t k = 0; k < out_types.size(); ++k) {
      TensorInfo t;
      t.name = k == 0 ? n.name : fmt::format("{}:{}", n.name, k);
      t.type = out_types[k];
      if (!cn.op->supports_masking() && !cn.op->produces_mask()) t.type.masked = false;
      t.producer = static_cast<int>(g.nodes.size());
      tensor_of[t.name] = static_cast<int>(g.tensors.size());
      cn.outputs.push_back(static_cast<int>(g.tensors.size()));
      g.tensors.push_back(t);
      branches.push_back(branch);
    }
    cn.branch = branch.size() == 1 ? *branch.begin() : "";
    g.nodes.push_back(std::move(cn));
  }
  for (const auto& o : def.outputs) g.output_tensors.push_back(tensor_of.at(o));
  return g;
}

// Warnings: nodes that reach no output, inputs no output uses.
std::vector<Diagnostic> dead_code_warnings(const GraphDef& def, const Inferred& g) {
  std::vector<Diagnostic> warnings;
  std::vector<bool> live(g.tensors.size(), false);
  for (int t : g.output_tensors) live[t] = true;
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    bool used = false;
    for (int t : it->outputs) used = used || live[t];
    if (used) {
      for (int t : it->inputs) live[t] = true;
    } else {
      warnings.push_back(Diagnostic{it->def->loc, it->def->name,
                                    "this node does not reach any output and will not run"});
    }
  }
  for (size_t i = 0; i < g.input_tensors.size(); ++i)
    if (!live[g.input_tensors[i]])
      warnings.push_back(
          Diagnostic{def.inputs[i].loc, "",
                     fmt::format("input '{}' is not used by any output", def.inputs[i].name)});
  return warnings;
}

}  // namespace

CompiledGraph compile_graph(std::shared_ptr<const GraphDef> def_ptr, const OpRegistry& registry) {
  const GraphDef& def = *def_ptr;
  const Names names = check_names(def);
  std::vector<std::unique_ptr<Op>> ops;
  for (const NodeDef& n : def.nodes) ops.push_back(parse_node(n, registry));
  const std::vector<std::vector<int>> preds = resolve_references(def, names);
  const std::vector<int> order = schedule(def, preds);
  Inferred inferred = infer_graph(def, std::move(ops), order);

  CompiledGraph g;
  g.def_ = def_ptr;
  g.warnings_ = dead_code_warnings(def, inferred);
  g.nodes_ = std::move(inferred.nodes);
  g.tensors_ = std::move(inferred.tensors);
  g.input_tensors_ = std::move(inferred.input_tensors);
  g.output_tensors_ = std::move(inferred.output_tensors);
  // Every weight within the size limit, for what the symbolic types already tell.
  std::vector<TensorType> types;
  for (const auto& t : g.tensors_) types.push_back(t.type);
  for (size_t i = 0; i < g.nodes_.size(); ++i) g.node_weights(i, types);
  g.check_shared_weights(types);
  // A `training:` section must fit the graph (losses for outputs that exist and fit them, ...),
  // checked whenever the graph is compiled, not first when training starts.
  if (def.training) resolve_training_outputs(parse_training_config(*def.training), g);
  // Every `preprocessing:` valid and fitting its input, so `graph-runner validate` reports it.
  parse_preprocessing(def);
  return g;
}

int CompiledGraph::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].name == name) return static_cast<int>(i);
  return -1;
}

InferContext CompiledGraph::context_for(size_t node, const std::vector<TensorType>& types) const {
  const CompiledNode& n = nodes_[node];
  std::vector<TensorType> in;
  for (int t : n.inputs) in.push_back(types[t]);
  return InferContext(*n.def, std::move(in), n.def->inputs);
}

std::vector<TensorType> CompiledGraph::bind(const std::vector<Dims>& input_shapes) const {
  if (input_shapes.size() != input_tensors_.size())
    throw Error(fmt::format("expected {} input shapes, got {}", input_tensors_.size(),
                            input_shapes.size()));
  std::vector<TensorType> types(tensors_.size());
  for (size_t i = 0; i < input_tensors_.size(); ++i) {
    const TensorInfo& t = tensors_[input_tensors_[i]];
    const Dims& s = input_shapes[i];
    bool fits = s.size() == t.type.shape.size();
    for (size_t k = 0; fits && k < s.size(); ++k)
      fits = s[k] >= 1 && (t.type.shape[k] == kDynamic || t.type.shape[k] == s[k]);
    if (!fits)
      throw Error(fmt::format("input '{}' expects shape {} (batch first), got {}", t.name,
                              format_shape(t.type.shape), format_shape(s)))
          .at(def_->inputs[i].loc)
          .tensor(t.name);
    try {
      check_tensor_size(s, t.type.dtype, "the input");
    } catch (Error& e) {
      throw e.at(def_->inputs[i].loc).tensor(t.name);
    }
    types[input_tensors_[i]] = TensorType{s, t.type.dtype, false};
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const CompiledNode& n = nodes_[i];
    InferContext ctx = context_for(i, types);
    std::vector<TensorType> out;
    try {
      out = n.op->infer(ctx);
    } catch (Error& e) {
      throw at_node(e, *n.def);
    }
    if (out.size() != n.outputs.size())
      throw Error("internal: output count changed on bind").node(n.def->name, n.def->op);
    for (size_t k = 0; k < out.size(); ++k) {
      if (!n.op->supports_masking() && !n.op->produces_mask()) out[k].masked = false;
      if (!out[k].is_concrete())
        throw Error(fmt::format("output shape {} is not concrete after binding the inputs",
                                format_shape(out[k].shape)))
            .at(n.def->loc)
            .node(n.def->name, n.def->op);
      types[n.outputs[k]] = out[k];
    }
    check_node_sizes(*n.def, out);
  }
  check_shared_weights(types);
  return types;
}

std::vector<Dims> CompiledGraph::concrete_input_shapes(
    int64_t batch, const std::map<std::string, std::vector<int64_t>>& dims) const {
  for (const auto& [name, values] : dims) {
    bool known = false;
    for (const auto& in : def_->inputs) known = known || in.name == name;
    if (!known) {
      std::vector<std::string> names;
      for (const auto& in : def_->inputs) names.push_back(in.name);
      throw Error(fmt::format("--dim names '{}', which is not a graph input", name))
          .hint(did_you_mean(name, names));
    }
  }
  std::vector<Dims> out;
  for (const auto& in : def_->inputs) {
    Dims s{batch};
    auto it = dims.find(in.name);
    size_t used = 0;
    for (Dim d : in.shape) {
      if (d != kDynamic) {
        s.push_back(d);
      } else if (it != dims.end() && used < it->second.size()) {
        s.push_back(it->second[used++]);
      } else {
        throw Error(fmt::format("input '{}' has a null dimension; give its size with --dim {}=N",
                                in.name, in.name))
            .at(in.loc);
      }
    }
    if (it != dims.end() && used != it->second.size())
      throw Error(fmt::format("--dim {} gives {} size(s) but the input has {} null dimension(s)",
                              in.name, it->second.size(), used));
    for (Dim d : s)
      if (d < 1)
        throw Error(fmt::format("input '{}' would get shape {}: every size (batch, --dim) must be "
                                "at least 1",
                                in.name, format_shape(s)))
            .at(in.loc)
            .tensor(in.name);
    try {
      check_tensor_size(s, in.dtype, "the input (batch and --dim applied)");
    } catch (Error& e) {
      throw e.at(in.loc).tensor(in.name);
    }
    out.push_back(s);
  }
  return out;
}

std::vector<WeightSpec> CompiledGraph::node_weights(size_t node,
                                                    const std::vector<TensorType>& types) const {
  InferContext ctx = context_for(node, types);
  try {
    std::vector<WeightSpec> specs = nodes_[node].op->weights(ctx);
    for (const auto& w : specs)
      check_tensor_size(w.shape, DType::f32, fmt::format("weight '{}'", w.param));
    return specs;
  } catch (Error& e) {
    throw at_node(e, *nodes_[node].def);
  }
}

NodeStats CompiledGraph::node_stats(size_t node, const std::vector<TensorType>& types) const {
  NodeStats s;
  for (const auto& w : node_weights(node, types)) s.params += num_elements(w.shape);
  InferContext ctx = context_for(node, types);
  std::vector<TensorType> outs;
  for (int t : nodes_[node].outputs) outs.push_back(types[t]);
  s.flops = nodes_[node].op->flops_per_sample(ctx, outs);
  return s;
}

std::vector<std::pair<std::string, WeightSpec>> CompiledGraph::all_weights() const {
  std::vector<TensorType> types;
  for (const auto& t : tensors_) types.push_back(t.type);
  std::vector<std::pair<std::string, WeightSpec>> out;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].def->weights_of.empty())
      for (auto& w : node_weights(i, types))
        out.emplace_back(nodes_[i].def->name + "." + w.param, w);
  return out;
}

size_t CompiledGraph::weights_owner(size_t node) const {
  const std::string& owner = nodes_[node].def->weights_of;
  if (owner.empty()) return node;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].def->name == owner) return i;
  throw Error(fmt::format("internal: node '{}' takes the weights of '{}', which is not a node",
                          nodes_[node].def->name, owner));
}

namespace {

// The node `n` names in `weights_of`, checked to own its weights; its schedule index.
size_t shared_weights_owner(const std::vector<CompiledNode>& nodes, const GraphDef& def,
                            const NodeDef& n) {
  std::vector<std::string> names;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeDef& o = *nodes[i].def;
    names.push_back(o.name);
    if (o.name != n.weights_of) continue;
    if (&o == &n)
      throw Error("`weights_of` names the node itself")
          .at(n.weights_of_loc)
          .node(n.name, n.op)
          .hint("name the node whose weights it shares, or remove `weights_of`");
    if (!o.weights_of.empty())
      throw Error(fmt::format("takes the weights of '{}', which takes them from '{}' itself",
                              o.name, o.weights_of))
          .at(n.weights_of_loc)
          .node(n.name, n.op)
          .hint(
              fmt::format("name the node that holds the weights: `weights_of: {}`", o.weights_of));
    if (o.op != n.op)
      throw Error(fmt::format("takes the weights of '{}' (line {}), a {} node: weights are "
                              "shared only between nodes of the same op",
                              o.name, o.loc.line, o.op))
          .at(n.weights_of_loc)
          .node(n.name, n.op)
          .hint(fmt::format("give '{}' the op {}, or remove `weights_of`", n.name, o.op));
    return i;
  }
  for (const InputDef& in : def.inputs)
    if (in.name == n.weights_of)
      throw Error(
          fmt::format("weights_of names '{}', a graph input, which has no weights", n.weights_of))
          .at(n.weights_of_loc)
          .node(n.name, n.op)
          .hint("name the node whose weights this node shares");
  Error e(fmt::format("weights_of names '{}', which is not a node", n.weights_of));
  e.at(n.weights_of_loc).node(n.name, n.op);
  const std::string best = closest_match(n.weights_of, names);
  e.hint(best.empty() ? "name the node whose weights this node shares"
                      : fmt::format("did you mean '{}'?", best));
  throw e;
}

}  // namespace

void CompiledGraph::check_shared_weights(const std::vector<TensorType>& types) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const NodeDef& n = *nodes_[i].def;
    if (n.weights_of.empty()) continue;
    const size_t owner_index = shared_weights_owner(nodes_, *def_, n);
    const NodeDef& owner = *nodes_[owner_index].def;
    const std::vector<WeightSpec> mine = node_weights(i, types);
    const std::vector<WeightSpec> theirs = node_weights(owner_index, types);
    auto fail = [&](const std::string& what) {
      return Error(fmt::format("takes the weights of '{}' (line {}), but {}", owner.name,
                               owner.loc.line, what))
          .at(n.weights_of_loc)
          .node(n.name, n.op)
          .hint(fmt::format("the attributes and input sizes that shape the weights must be the "
                            "same as '{}''s (one set of weights serves both nodes)",
                            owner.name));
    };
    if (theirs.empty()) throw fail(fmt::format("'{}' has no weights", owner.name));
    std::vector<std::string> mine_names, their_names;
    for (const auto& w : mine) mine_names.push_back(w.param);
    for (const auto& w : theirs) their_names.push_back(w.param);
    if (mine_names != their_names)
      throw fail(fmt::format("its weights would be {} and '{}''s are {}", quoted_list(mine_names),
                             owner.name, quoted_list(their_names)));
    for (size_t k = 0; k < mine.size(); ++k)
      if (mine[k].shape != theirs[k].shape)
        throw fail(fmt::format("its weight '{}' would be {} and '{}''s is {}", mine[k].param,
                               format_shape(mine[k].shape), owner.name,
                               format_shape(theirs[k].shape)));
    if (n.trainable != owner.trainable)
      throw Error(fmt::format("trainable: {} but takes the weights of '{}', which has "
                              "trainable: {}",
                              n.trainable, owner.name, owner.trainable))
          .at(n.trainable_loc.known() ? n.trainable_loc : n.weights_of_loc)
          .node(n.name, n.op)
          .hint(fmt::format("the weights are one set: set `trainable` on '{}' alone", owner.name));
  }
}

}  // namespace fg
