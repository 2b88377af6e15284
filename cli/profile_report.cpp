#include "cli/profile_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "cli/perf/process_stats.hpp"

namespace fg::cli {

namespace {

// Inserted reorders ("<node>/to_plain", "<node>/input_layout") carry no branch: they belong to
// their node's.
std::vector<std::string> step_branches(const std::vector<StepTiming>& steps) {
  std::map<std::string, std::string> by_name;
  for (const auto& s : steps)
    if (s.op != "reorder") by_name[s.name] = s.branch;
  std::vector<std::string> out;
  for (const auto& s : steps) {
    std::string b = s.branch;
    if (s.op == "reorder" && b.empty()) {
      auto it = by_name.find(s.name.substr(0, s.name.find('/')));
      if (it != by_name.end()) b = it->second;
    }
    out.push_back(b);
  }
  return out;
}

std::string branch_label(const std::string& b) {
  return b.empty() ? "(fusion/head)" : b;
}

double gflops_of(double flops, double ms) {
  return ms > 0 ? flops / (ms * 1e-3) / 1e9 : 0;
}

}  // namespace

std::vector<std::vector<StepTiming>> profile_runs(const Session& session,
                                                  const std::map<std::string, Tensor>& inputs,
                                                  int runs) {
  std::vector<std::vector<StepTiming>> out(std::max(runs, 1));
  for (auto& steps : out) {
    RunOptions ro;
    ro.profile = &steps;
    session.run(inputs, ro);
  }
  return out;
}

ProfileSummary summarize_profile(const std::vector<std::vector<StepTiming>>& runs) {
  if (runs.empty() || runs.front().empty()) throw Error("no profiled steps to summarize");
  const auto& first = runs.front();
  for (const auto& r : runs) {
    bool same = r.size() == first.size();
    for (size_t i = 0; same && i < r.size(); ++i) same = r[i].name == first[i].name;
    if (!same) throw Error("the profiled runs executed different steps");
  }
  const auto branches = step_branches(first);
  ProfileSummary p;
  p.runs = runs.size();
  std::vector<double> totals;
  std::map<std::string, std::vector<double>> branch_times;
  std::map<std::string, double> branch_flops;
  for (const auto& r : runs) {
    double total = 0;
    std::map<std::string, double> per_branch;
    for (size_t i = 0; i < r.size(); ++i) {
      total += r[i].duration_ms;
      per_branch[branches[i]] += r[i].duration_ms;
    }
    totals.push_back(total);
    for (const auto& [b, t] : per_branch) branch_times[b].push_back(t);
  }
  p.total_median_ms = perf::median(totals);
  // the run whose total is closest to the median (for the trace)
  double best = -1;
  for (size_t k = 0; k < totals.size(); ++k) {
    double d = std::abs(totals[k] - p.total_median_ms);
    if (best < 0 || d < best) best = d, p.median_run = k;
  }
  double node_sum = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    NodeProfile n;
    n.name = first[i].name;
    n.op = first[i].op;
    n.branch = branches[i];
    n.impl = first[i].impl;
    n.flops = first[i].flops;
    std::vector<double> t;
    for (const auto& r : runs) t.push_back(r[i].duration_ms);
    n.median_ms = perf::median(t);
    n.gflops = gflops_of(n.flops, n.median_ms);
    node_sum += n.median_ms;
    branch_flops[n.branch] += n.flops;
    p.nodes.push_back(n);
  }
  for (auto& n : p.nodes) n.share = node_sum > 0 ? n.median_ms / node_sum : 0;
  std::stable_sort(p.nodes.begin(), p.nodes.end(), [](const NodeProfile& a, const NodeProfile& b) {
    return a.median_ms > b.median_ms;
  });
  double branch_sum = 0;
  for (auto& [b, times] : branch_times) {
    BranchProfile bp;
    bp.branch = b;
    bp.times_ms = times;
    bp.median_ms = perf::median(times);
    bp.flops = branch_flops[b];
    bp.gflops = gflops_of(bp.flops, bp.median_ms);
    branch_sum += bp.median_ms;
    p.branches.push_back(bp);
  }
  for (auto& b : p.branches) b.share = branch_sum > 0 ? b.median_ms / branch_sum : 0;
  std::stable_sort(
      p.branches.begin(), p.branches.end(),
      [](const BranchProfile& a, const BranchProfile& b) { return a.median_ms > b.median_ms; });
  return p;
}

std::string format_profile_table(const ProfileSummary& p) {
  size_t wn = 4, wo = 2, wb = 6;
  for (const auto& n : p.nodes) {
    wn = std::max(wn, n.name.size());
    wo = std::max(wo, n.op.size());
    wb = std::max(wb, branch_label(n.branch).size());
  }
  std::string out = fmt::format("per node (median of {} profiled runs, slowest first):\n", p.runs);
  out += fmt::format("  {:<{}}  {:<{}}  {:<{}}  {:>10}  {:>6}  {:>8}  {}\n", "node", wn, "op", wo,
                     "branch", wb, "median ms", "share", "GFLOP/s", "oneDNN impl");
  for (const auto& n : p.nodes)
    out += fmt::format("  {:<{}}  {:<{}}  {:<{}}  {:>10.3f}  {:>5.1f}%  {:>8}  {}\n", n.name, wn,
                       n.op, wo, branch_label(n.branch), wb, n.median_ms, 100 * n.share,
                       n.flops > 0 ? fmt::format("{:.1f}", n.gflops) : "-",
                       n.impl.empty() ? "(plain C++)" : n.impl);
  out += fmt::format("per branch (nodes grouped by the input they descend from):\n");
  out += fmt::format("  {:<{}}  {:>10}  {:>6}  {:>8}\n", "branch", wb, "median ms", "share",
                     "GFLOP/s");
  for (const auto& b : p.branches)
    out += fmt::format("  {:<{}}  {:>10.3f}  {:>5.1f}%  {:>8}\n", branch_label(b.branch), wb,
                       b.median_ms, 100 * b.share,
                       b.flops > 0 ? fmt::format("{:.1f}", b.gflops) : "-");
  out += fmt::format("  {:<{}}  {:>10.3f}  (sum of the steps, waiting after each)\n", "total", wb,
                     p.total_median_ms);
  return out;
}

void add_profile_json(nlohmann::ordered_json& object, const ProfileSummary& p) {
  auto& nodes = object["per_node"] = nlohmann::ordered_json::array();
  for (const auto& n : p.nodes)
    nodes.push_back({{"node", n.name},
                     {"op", n.op},
                     {"branch", n.branch},
                     {"impl", n.impl},
                     {"median_ms", n.median_ms},
                     {"share", n.share},
                     {"flops", n.flops},
                     {"gflops", n.gflops}});
  auto& branches = object["per_branch"] = nlohmann::ordered_json::array();
  for (const auto& b : p.branches)
    branches.push_back({{"branch", b.branch},
                        {"median_ms", b.median_ms},
                        {"share", b.share},
                        {"flops", b.flops},
                        {"gflops", b.gflops},
                        {"times_ms", b.times_ms}});
  object["profiled_total_median_ms"] = p.total_median_ms;
  object["profiled_runs"] = p.runs;
}

namespace {

nlohmann::ordered_json metadata_event(const char* what, int pid, int tid, const std::string& name) {
  nlohmann::ordered_json e = {{"name", what}, {"ph", "M"}, {"pid", pid}};
  if (tid > 0) e["tid"] = tid;
  e["args"] = {{"name", name}};
  return e;
}

// One run of the trace: a process, a thread row per branch, an "X" event per step.
void add_trace_run(nlohmann::ordered_json& events, const TraceRun& run, int pid) {
  events.push_back(metadata_event("process_name", pid, 0, run.label));
  const auto branches = step_branches(run.steps);
  std::vector<std::string> rows;  // thread rows, in order of appearance
  for (const auto& b : branches)
    if (std::find(rows.begin(), rows.end(), b) == rows.end()) rows.push_back(b);
  for (size_t t = 0; t < rows.size(); ++t)
    events.push_back(metadata_event("thread_name", pid, static_cast<int>(t) + 1,
                                    rows[t].empty() ? "fusion/head" : "branch " + rows[t]));
  for (size_t i = 0; i < run.steps.size(); ++i) {
    const StepTiming& s = run.steps[i];
    const int tid =
        static_cast<int>(std::find(rows.begin(), rows.end(), branches[i]) - rows.begin()) + 1;
    events.push_back({{"name", s.name},
                      {"cat", s.op},
                      {"ph", "X"},
                      {"ts", s.start_ms * 1000.0},
                      {"dur", s.duration_ms * 1000.0},
                      {"pid", pid},
                      {"tid", tid},
                      {"args", {{"impl", s.impl}, {"branch", branches[i]}, {"flops", s.flops}}}});
  }
}

}  // namespace

void write_chrome_trace(const std::string& path, const std::vector<TraceRun>& runs) {
  nlohmann::ordered_json trace = {{"displayTimeUnit", "ms"},
                                  {"traceEvents", nlohmann::ordered_json::array()}};
  for (size_t r = 0; r < runs.size(); ++r)
    add_trace_run(trace["traceEvents"], runs[r], static_cast<int>(r) + 1);
  write_file_atomic(path, {json_text(trace)});
}

}  // namespace fg::cli
