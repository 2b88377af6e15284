// Process and machine figures for benchmarks: peak resident memory, the CPU share other
// processes took while a block of work ran, the CPU model, and order statistics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fg::perf {

// getrusage(RUSAGE_SELF).ru_maxrss in bytes (Linux reports KiB); 0 if unavailable.
int64_t max_rss_bytes();
// A "Vm...:" field of /proc/self/status in bytes (e.g. "VmHWM", "VmRSS"); 0 if unavailable.
int64_t proc_status_bytes(const std::string& field);
// "model name" of /proc/cpuinfo ("" if unknown).
std::string cpu_model();

// Which share of the machine's CPU time went to *other* processes (plus hypervisor steal)
// between start() and foreign(): (busy ticks of all CPUs - this process's ticks) / all ticks,
// from /proc/stat and times(); clamped to [0, 1]; 0 if /proc/stat cannot be read. The same
// definition as the peer benchmarks' sysload.py, so the figures compare.
class CpuContention {
 public:
  void start();
  double foreign() const;

 private:
  int64_t total_ = 0, idle_ = 0, self_ = 0;
  bool ok_ = false;
};

// Percentile p in [0, 100] with linear interpolation between order statistics (numpy's
// default); NaN for an empty list.
double percentile(std::vector<double> values, double p);
inline double median(const std::vector<double>& values) {
  return percentile(values, 50);
}

}  // namespace fg::perf
