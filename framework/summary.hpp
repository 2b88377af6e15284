// Model summaries in the manner of Keras's model.summary(), as a table or JSON, and Graphviz DOT.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "framework/compiler.hpp"

namespace fg {

struct SummaryOptions {
  int64_t batch = 0;                                 // 0: show the batch as None
  std::map<std::string, std::vector<int64_t>> dims;  // sizes for null dims, per input
};

struct SummaryRow {
  std::string node, op;
  Dims shape;              // output 0
  int64_t params = 0;      // 0 for a node with `weights_of`: the weights count once, at their owner
  std::string weights_of;  // the node whose weights this one uses (`weights_of`), or ""
  double flops = -1;       // per sample; -1 when a dynamic dim leaves it unknown
  std::vector<std::string> inputs;
  std::string branch;
};

struct Summary {
  std::string name;
  std::vector<SummaryRow> rows;
  // Each weight counted once (a shared one at its owner), as Keras's model.summary() does;
  // trainable: the op's trainable weights of nodes without `trainable: false`.
  int64_t total_params = 0, trainable_params = 0;
  double total_flops = -1;
  bool concrete = false;  // FLOPs known for all nodes
};

Summary summarize(const CompiledGraph& graph, const SummaryOptions& options);
std::string format_summary_table(const Summary& s);
std::string format_summary_json(const Summary& s);
std::string format_dot(const CompiledGraph& graph, const SummaryOptions& options);

// 1234567 -> "1,234,567"
std::string group_digits(int64_t value);

}  // namespace fg
