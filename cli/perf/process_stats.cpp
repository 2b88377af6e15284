#include "cli/perf/process_stats.hpp"

#include <sys/resource.h>
#include <sys/times.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace fg::perf {

int64_t max_rss_bytes() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

int64_t proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    std::istringstream s(line.substr(prefix.size()));
    int64_t value = 0;
    std::string unit;
    if (!(s >> value)) return 0;
    s >> unit;
    return unit == "kB" ? value * 1024 : value;
  }
  return 0;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) return "";
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  }
  return "";
}

namespace {

bool read_stat(int64_t& total, int64_t& idle) {
  std::ifstream in("/proc/stat");
  std::string cpu;
  if (!(in >> cpu) || cpu != "cpu") return false;
  int64_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int n = 0;
  while (n < 8 && in >> v[n]) ++n;
  if (n < 5) return false;
  // user nice system idle iowait irq softirq steal
  total = 0;
  for (int i = 0; i < n; ++i) total += v[i];
  idle = v[3] + v[4];
  return true;
}

int64_t self_ticks() {
  tms t{};
  times(&t);
  return static_cast<int64_t>(t.tms_utime + t.tms_stime + t.tms_cutime + t.tms_cstime);
}

}  // namespace

void CpuContention::start() {
  ok_ = read_stat(total_, idle_);
  self_ = self_ticks();
}

double CpuContention::foreign() const {
  int64_t total = 0, idle = 0;
  if (!ok_ || !read_stat(total, idle)) return 0;
  const double all = std::max<int64_t>(total - total_, 1);
  const double busy = all - static_cast<double>(idle - idle_);
  const double mine = static_cast<double>(self_ticks() - self_);
  return std::clamp((busy - mine) / all, 0.0, 1.0);
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  p = std::clamp(p, 0.0, 100.0);
  const double pos = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

}  // namespace fg::perf
