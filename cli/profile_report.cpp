#include "cli/profile_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "framework/error.hpp"
#include "engine/file_io.hpp"
#include "engine/perf/process_stats.hpp"

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

std::vector<std::vector<StepTiming>> profile_runs(const Model& model,
                                                  const std::map<std::string, Tensor>& inputs,
                                                  int runs) {
  std::vector<std::vector<StepTiming>> out(std::max(runs, 1));
  for (auto& steps : out) {
    RunOptions ro;
    ro.profile = &steps;
    model.run(inputs, ro);
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

void write_profile_json(JsonWriter& w, const ProfileSummary& p) {
  w.key("per_node").begin_array();
  for (const auto& n : p.nodes) {
    w.begin_object(true);
    w.member("node", n.name).member("op", n.op).member("branch", n.branch).member("impl", n.impl);
    w.member("median_ms", n.median_ms).member("share", n.share).member("flops", n.flops);
    w.member("gflops", n.gflops);
    w.end_object();
  }
  w.end_array();
  w.key("per_branch").begin_array();
  for (const auto& b : p.branches) {
    w.begin_object();
    w.member("branch", b.branch).member("median_ms", b.median_ms).member("share", b.share);
    w.member("flops", b.flops).member("gflops", b.gflops);
    w.number_array("times_ms", b.times_ms);
    w.end_object();
  }
  w.end_array();
  w.member("profiled_total_median_ms", p.total_median_ms);
  w.member("profiled_runs", p.runs);
}

void write_chrome_trace(const std::string& path, const std::vector<TraceRun>& runs) {
  JsonWriter w;
  w.begin_object();
  w.member("displayTimeUnit", "ms");
  w.key("traceEvents").begin_array();
  for (size_t r = 0; r < runs.size(); ++r) {
    const int pid = static_cast<int>(r) + 1;
    w.begin_object(true)
        .member("name", "process_name")
        .member("ph", "M")
        .member("pid", pid)
        .key("args")
        .begin_object(true)
        .member("name", runs[r].label)
        .end_object()
        .end_object();
    const auto branches = step_branches(runs[r].steps);
    std::vector<std::string> rows;  // thread rows, in order of appearance
    for (const auto& b : branches)
      if (std::find(rows.begin(), rows.end(), b) == rows.end()) rows.push_back(b);
    for (size_t t = 0; t < rows.size(); ++t)
      w.begin_object(true)
          .member("name", "thread_name")
          .member("ph", "M")
          .member("pid", pid)
          .member("tid", static_cast<int>(t) + 1)
          .key("args")
          .begin_object(true)
          .member("name", rows[t].empty() ? "fusion/head" : "branch " + rows[t])
          .end_object()
          .end_object();
    for (size_t i = 0; i < runs[r].steps.size(); ++i) {
      const StepTiming& s = runs[r].steps[i];
      const int tid =
          static_cast<int>(std::find(rows.begin(), rows.end(), branches[i]) - rows.begin()) + 1;
      w.begin_object(true)
          .member("name", s.name)
          .member("cat", s.op)
          .member("ph", "X")
          .member("ts", s.start_ms * 1000.0)
          .member("dur", s.duration_ms * 1000.0)
          .member("pid", pid)
          .member("tid", tid)
          .key("args")
          .begin_object(true)
          .member("impl", s.impl)
          .member("branch", branches[i])
          .member("flops", s.flops)
          .end_object()
          .end_object();
    }
  }
  w.end_array();
  w.end_object();
  const std::string text = w.str();
  write_file_atomic(path, {text});
}

}  // namespace fg::cli
