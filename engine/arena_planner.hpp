// Placing a plan's buffers in one arena by liveness. Each buffer is live over an inclusive range
// of steps (or for the whole plan when persistent: parameters, optimizer slots); two buffers
// live at the same step never share bytes, and a buffer may reuse the bytes of one that is dead
// by the time it is first used. Greedy by size, as XNNPACK plans its memory: the largest buffer
// first, each at the lowest offset that overlaps no placed buffer whose lifetime overlaps.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fg {

constexpr size_t kArenaAlignment = 64;  // bytes; every offset is a multiple

struct ArenaBuffer {
  size_t bytes = 0;
  int first = 0, last = 0;  // steps in which the buffer is live (inclusive); ignored if persistent
  bool persistent = false;  // live for the whole plan: shares bytes with nothing
};

struct ArenaLayout {
  std::vector<size_t> offsets;  // per buffer, in the order given
  size_t total = 0;             // arena bytes
};

// `bytes` rounded up to the alignment: the bytes a buffer occupies in the arena.
size_t arena_footprint(size_t bytes, size_t alignment = kArenaAlignment);

// Offsets for `buffers`; ties in size keep the order given. Throws fg::Error for an alignment
// that is not a power of two or a lifetime with first > last.
ArenaLayout plan_arena(const std::vector<ArenaBuffer>& buffers, size_t alignment = kArenaAlignment);

// "" when no two buffers live at the same step share a byte, every offset is aligned and every
// buffer fits in the total; otherwise a description of the first violation. Checks every pair,
// independently of plan_arena.
std::string arena_layout_problem(const std::vector<ArenaBuffer>& buffers, const ArenaLayout& layout,
                                 size_t alignment = kArenaAlignment);

}  // namespace fg
