// Batches decoded ahead on worker threads (docs/data.md, "Pipeline"): workers gather the batches
// of an epoch's order into a bounded ring of batch slots; the consumer takes them in order. Each
// batch is gathered by one worker, single-threaded, so the numbers and their order do not depend
// on the worker count; memory is the ring's `depth` batches, whatever the data set's size. The
// workers are plain std::threads (the model's compute keeps its OpenMP threads).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/training/dataset.hpp"

namespace fg {

// The default decode worker count: 2, or the hardware threads when fewer.
int default_data_workers();

// fn(begin, end) over contiguous parts of [0, count) on `workers` threads (the caller's thread
// takes the first part; workers <= 1 runs everything inline). Rethrows the exception of the
// first part that threw, after every part finished.
void run_on_workers(int64_t count, int workers, const std::function<void(int64_t, int64_t)>& fn);

class BatchPrefetcher {
 public:
  // The batches of `order` (indices into `data`), `batch_size` rows each (the last may be
  // shorter). `workers` >= 1 threads; `depth` batches in flight at most (0: workers + 1).
  BatchPrefetcher(const Dataset& data, std::vector<int64_t> order, int64_t batch_size, int workers,
                  int depth = 0);
  ~BatchPrefetcher();  // stops the workers (a batch being decoded is finished first)
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  int64_t batches() const { return batches_; }
  // The next batch in order, or nullptr after the last; valid until the next call. Rethrows the
  // fg::Error of a batch that failed to decode when its turn comes.
  const Batch* next();

 private:
  struct Slot {
    Batch batch;
    int64_t index = -1;  // the batch it holds (ready when index == the batch wanted)
    std::exception_ptr error;
  };
  void work();

  const Dataset data_;
  const std::vector<int64_t> order_;
  const int64_t batch_size_, batches_;
  std::vector<Slot> slots_;
  std::mutex mutex_;
  std::condition_variable ready_, free_;
  int64_t claimed_ = 0;   // batches handed to workers so far
  int64_t consumed_ = 0;  // batches whose slot the consumer has released
  int64_t current_ = -1;  // the batch the consumer holds
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fg
