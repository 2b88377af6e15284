#include "engine/arena_planner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "framework/error.hpp"

namespace fg {

namespace {
bool lifetimes_overlap(const ArenaBuffer& a, const ArenaBuffer& b) {
  return a.persistent || b.persistent || (a.first <= b.last && b.first <= a.last);
}
}  // namespace

size_t arena_footprint(size_t bytes, size_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

ArenaLayout plan_arena(const std::vector<ArenaBuffer>& buffers, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw Error(fmt::format("internal: arena alignment {} is not a power of two", alignment));
  for (size_t b = 0; b < buffers.size(); ++b)
    if (!buffers[b].persistent && buffers[b].first > buffers[b].last)
      throw Error(fmt::format("internal: arena buffer {} is live from step {} to step {}", b,
                              buffers[b].first, buffers[b].last));
  std::vector<size_t> order(buffers.size());
  for (size_t b = 0; b < order.size(); ++b) order[b] = b;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  ArenaLayout layout;
  layout.offsets.assign(buffers.size(), 0);
  std::vector<size_t> placed;
  for (size_t b : order) {
    const ArenaBuffer& buf = buffers[b];
    const size_t size = arena_footprint(buf.bytes, alignment);
    std::vector<std::pair<size_t, size_t>> busy;  // [lo, hi) of placed buffers live with it
    for (size_t p : placed)
      if (lifetimes_overlap(buf, buffers[p]))
        busy.emplace_back(layout.offsets[p],
                          layout.offsets[p] + arena_footprint(buffers[p].bytes, alignment));
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (offset + size <= lo) break;
      offset = std::max(offset, hi);
    }
    layout.offsets[b] = offset;
    layout.total = std::max(layout.total, offset + size);
    placed.push_back(b);
  }
  return layout;
}

std::string arena_layout_problem(const std::vector<ArenaBuffer>& buffers, const ArenaLayout& layout,
                                 size_t alignment) {
  if (layout.offsets.size() != buffers.size())
    return fmt::format("{} offsets for {} buffers", layout.offsets.size(), buffers.size());
  for (size_t a = 0; a < buffers.size(); ++a) {
    const size_t lo = layout.offsets[a], hi = lo + buffers[a].bytes;
    if (lo % alignment != 0)
      return fmt::format("buffer {} at offset {} is not {}-byte aligned", a, lo, alignment);
    if (hi > layout.total)
      return fmt::format("buffer {} [{}, {}) ends past the arena's {} bytes", a, lo, hi,
                         layout.total);
    for (size_t b = a + 1; b < buffers.size(); ++b) {
      const size_t blo = layout.offsets[b], bhi = blo + buffers[b].bytes;
      if (buffers[a].bytes == 0 || buffers[b].bytes == 0 || hi <= blo || bhi <= lo) continue;
      if (lifetimes_overlap(buffers[a], buffers[b]))
        return fmt::format(
            "buffers {} [{}, {}) and {} [{}, {}) overlap and are both live at a step", a, lo, hi, b,
            blo, bhi);
    }
  }
  return "";
}

}  // namespace fg
