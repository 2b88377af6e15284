// Per-node / per-branch profiles (graph-runner run|bench --per-node) and Chrome trace files
// (--trace), built from Session::run's RunOptions::profile step timings.
#pragma once

#include <fusiongraph/fusiongraph.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/json_text.hpp"

namespace fg::cli {

struct NodeProfile {
  std::string name, op, branch, impl;
  double median_ms = 0;  // median over the profiled runs
  double share = 0;      // of the sum of all steps' medians
  double flops = 0;      // whole batch
  double gflops = 0;     // flops / median
};

struct BranchProfile {
  std::string branch;    // graph input the nodes descend from; "" = fusion/head
  double median_ms = 0;  // median over the runs of the branch's summed step times
  double share = 0;      // of the sum of all branches' medians
  double flops = 0, gflops = 0;
  std::vector<double> times_ms;  // per run
};

struct ProfileSummary {
  std::vector<NodeProfile> nodes;       // sorted by median time, slowest first
  std::vector<BranchProfile> branches;  // sorted by median time, slowest first
  double total_median_ms = 0;           // median over the runs of the summed step times
  size_t runs = 0;
  size_t median_run = 0;  // index of the run whose total is the median
};

// Runs the session `runs` times with RunOptions::profile and returns each run's step timings.
std::vector<std::vector<StepTiming>> profile_runs(const Session& session,
                                                  const std::map<std::string, Tensor>& inputs,
                                                  int runs);

// Throws fg::Error if `runs` is empty or the runs do not have the same steps.
ProfileSummary summarize_profile(const std::vector<std::vector<StepTiming>>& runs);
// Two text tables: per node and per branch.
std::string format_profile_table(const ProfileSummary& p);
// Adds the members "per_node", "per_branch", "profiled_total_median_ms" and "profiled_runs".
void add_profile_json(nlohmann::ordered_json& object, const ProfileSummary& p);

struct TraceRun {
  std::string label;  // e.g. "batch 8": the trace's process name
  std::vector<StepTiming> steps;
};
// Chrome trace-event JSON (chrome://tracing, Perfetto): per run one process, per branch one
// thread row, one complete ("X") event per step with ts/dur in microseconds, cat = op,
// args {impl, branch, flops}. Written atomically (temp file + rename).
void write_chrome_trace(const std::string& path, const std::vector<TraceRun>& runs);

}  // namespace fg::cli
