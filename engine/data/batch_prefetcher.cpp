// BatchPrefetcher and run_on_workers (engine/data/batch_prefetcher.hpp).
#include "engine/data/batch_prefetcher.hpp"

#include <algorithm>

namespace fg {

int default_data_workers() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 2 : static_cast<int>(std::min(2u, hw));
}

void run_on_workers(int64_t count, int workers, const std::function<void(int64_t, int64_t)>& fn) {
  if (count <= 0) return;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(workers, count));
  if (parts == 1) {
    fn(0, count);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<size_t>(parts));
  const auto part = [&](int64_t p) {
    try {
      fn(count * p / parts, count * (p + 1) / parts);
    } catch (...) {
      errors[p] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int64_t p = 1; p < parts; ++p) threads.emplace_back(part, p);
  part(0);
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

BatchPrefetcher::BatchPrefetcher(const Dataset& data, std::vector<int64_t> order,
                                 int64_t batch_size, int workers, int depth)
    : data_(data),
      order_(std::move(order)),
      batch_size_(std::max<int64_t>(1, batch_size)),
      batches_((static_cast<int64_t>(order_.size()) + batch_size_ - 1) / batch_size_) {
  workers = std::max(1, workers);
  slots_.resize(static_cast<size_t>(depth > 0 ? depth : workers + 1));
  const int64_t threads = std::min<int64_t>(workers, batches_);
  for (int64_t t = 0; t < threads; ++t) threads_.emplace_back([this] { work(); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  free_.notify_all();
  for (auto& t : threads_) t.join();
}

void BatchPrefetcher::work() {
  const auto depth = static_cast<int64_t>(slots_.size());
  while (true) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Batch k goes into slot k % depth, free once batch k - depth was consumed.
      free_.wait(lock,
                 [&] { return stop_ || claimed_ >= batches_ || claimed_ < consumed_ + depth; });
      if (stop_ || claimed_ >= batches_) return;
      k = claimed_++;
    }
    Slot& slot = slots_[static_cast<size_t>(k % depth)];
    std::exception_ptr error;
    try {
      const int64_t first = k * batch_size_;
      const int64_t count = std::min(batch_size_, static_cast<int64_t>(order_.size()) - first);
      data_.gather(order_.data() + first, count, slot.batch, 1);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slot.error = error;
      slot.index = k;
    }
    ready_.notify_all();
  }
}

const Batch* BatchPrefetcher::next() {
  const auto depth = static_cast<int64_t>(slots_.size());
  std::unique_lock<std::mutex> lock(mutex_);
  if (current_ >= 0) {  // the previous batch's slot is free again
    consumed_ = current_ + 1;
    free_.notify_all();
  }
  const int64_t k = ++current_;
  if (k >= batches_) return nullptr;
  Slot& slot = slots_[static_cast<size_t>(k % depth)];
  ready_.wait(lock, [&] { return slot.index == k; });
  if (slot.error) std::rethrow_exception(slot.error);
  return &slot.batch;
}

}  // namespace fg
