// The arena planner on hand-made lifetimes: exact offsets worked out by hand for small cases,
// reuse of a dead buffer's bytes, alignment, persistent buffers, and the overlap checker (which
// must catch hand-made bad layouts, and pass every layout the planner makes).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>

#include "engine/arena_planner.hpp"
#include "framework/error.hpp"

using namespace fg;

namespace {
ArenaBuffer live(size_t bytes, int first, int last) {
  return {bytes, first, last, false};
}
ArenaBuffer persistent(size_t bytes) {
  return {bytes, 0, 0, true};
}
}  // namespace

TEST_CASE("arena: buffers live at the same step are stacked, largest first") {
  // All live at step 0: 128 goes first at 0, then the two 64s in the order given.
  const std::vector<ArenaBuffer> buffers{live(64, 0, 0), live(128, 0, 0), live(64, 0, 0)};
  const ArenaLayout layout = plan_arena(buffers);
  CHECK(layout.offsets == std::vector<size_t>{128, 0, 192});
  CHECK(layout.total == 256);
  CHECK(arena_layout_problem(buffers, layout).empty());
}

TEST_CASE("arena: a buffer reuses the bytes of one that is dead") {
  SUBCASE("two steps, one buffer each") {
    const std::vector<ArenaBuffer> buffers{live(256, 0, 0), live(256, 1, 1)};
    const ArenaLayout layout = plan_arena(buffers);
    CHECK(layout.offsets == std::vector<size_t>{0, 0});
    CHECK(layout.total == 256);
  }
  SUBCASE("a chain a -> b -> c: c takes a's bytes") {
    // a (100 B, 128 in the arena) steps 0-1, b (200 B, 256) steps 1-2, c (100 B) steps 2-3.
    // b first at 0; a meets b at step 1 -> 256; c meets b at step 2 but not a -> 256.
    const std::vector<ArenaBuffer> buffers{live(100, 0, 1), live(200, 1, 2), live(100, 2, 3)};
    const ArenaLayout layout = plan_arena(buffers);
    CHECK(layout.offsets == std::vector<size_t>{256, 0, 256});
    CHECK(layout.total == 384);
    CHECK(arena_layout_problem(buffers, layout).empty());
  }
  SUBCASE("a small buffer goes above those it meets") {
    // A 512 B steps 0-3 at 0; B 256 B steps 0-1 at 512; C 256 B steps 2-3 reuses B's 512;
    // D 64 B steps 1-2 meets A, B and C: 768.
    const std::vector<ArenaBuffer> buffers{live(512, 0, 3), live(256, 0, 1), live(256, 2, 3),
                                           live(64, 1, 2)};
    const ArenaLayout layout = plan_arena(buffers);
    CHECK(layout.offsets == std::vector<size_t>{0, 512, 512, 768});
    CHECK(layout.total == 832);
  }
  SUBCASE("a gap below a placed buffer is used when it fits") {
    // 256 steps 0-0 at 0, 192 steps 1-1 at 0, 128 steps 0-1 at 256, 64 steps 1-1 fits in
    // [192, 256) above the 192 and below the 128.
    const std::vector<ArenaBuffer> buffers{live(256, 0, 0), live(192, 1, 1), live(128, 0, 1),
                                           live(64, 1, 1)};
    const ArenaLayout layout = plan_arena(buffers);
    CHECK(layout.offsets == std::vector<size_t>{0, 0, 256, 192});
    CHECK(layout.total == 384);
  }
}

TEST_CASE("arena: sizes round up to the alignment and offsets are multiples of it") {
  const std::vector<ArenaBuffer> buffers{live(1, 0, 0), live(65, 0, 0), live(7, 1, 1)};
  SUBCASE("64 bytes") {
    const ArenaLayout layout = plan_arena(buffers);
    CHECK(layout.offsets == std::vector<size_t>{128, 0, 0});  // 65 takes 128
    CHECK(layout.total == 192);
  }
  SUBCASE("16 bytes") {
    const ArenaLayout layout = plan_arena(buffers, 16);
    CHECK(layout.offsets == std::vector<size_t>{80, 0, 0});  // 65 takes 80
    CHECK(layout.total == 96);
    CHECK(arena_layout_problem(buffers, layout, 16).empty());
  }
  CHECK(arena_footprint(0) == 0);
  CHECK(arena_footprint(64) == 64);
  CHECK(arena_footprint(65) == 128);
  CHECK_THROWS_AS(plan_arena(buffers, 48), Error);
  CHECK_THROWS_AS(plan_arena(buffers, 0), Error);
}

TEST_CASE("arena: persistent buffers share bytes with nothing") {
  // Without the persistent one, a (step 0) and b (step 1) would both sit at 0.
  const std::vector<ArenaBuffer> buffers{persistent(64), live(64, 0, 0), live(64, 1, 1)};
  const ArenaLayout layout = plan_arena(buffers);
  CHECK(layout.offsets == std::vector<size_t>{0, 64, 64});
  CHECK(layout.total == 128);
  // Two persistent buffers never meet at a step by their (ignored) ranges, yet they are apart.
  const std::vector<ArenaBuffer> two{{64, 5, 5, true}, {64, 9, 9, true}, live(128, 0, 0)};
  const ArenaLayout both = plan_arena(two);
  CHECK(both.offsets == std::vector<size_t>{128, 192, 0});
  CHECK(both.total == 256);
  CHECK(arena_layout_problem(two, both).empty());
}

TEST_CASE("arena: empty and zero-byte inputs") {
  CHECK(plan_arena({}).total == 0);
  const std::vector<ArenaBuffer> buffers{live(0, 0, 0), live(64, 0, 0)};
  const ArenaLayout layout = plan_arena(buffers);
  CHECK(layout.total == 64);
  CHECK(arena_layout_problem(buffers, layout).empty());
  CHECK_THROWS_AS(plan_arena({live(64, 2, 1)}), Error);
}

TEST_CASE("arena: the checker catches bad layouts") {
  const std::vector<ArenaBuffer> buffers{live(64, 0, 1), live(64, 1, 2), live(64, 2, 3)};
  // 0 and 1 meet at step 1 and share [0, 64).
  CHECK_FALSE(arena_layout_problem(buffers, {{0, 0, 64}, 128}).empty());
  // 0 and 2 never meet: sharing is fine.
  CHECK(arena_layout_problem(buffers, {{0, 64, 0}, 128}).empty());
  // Partial overlap: [0, 128) and [64, 192), both live at step 1.
  CHECK_FALSE(arena_layout_problem({live(128, 0, 1), live(128, 1, 2)}, {{0, 64}, 192}).empty());
  // Past the total, misaligned, too few offsets.
  CHECK_FALSE(arena_layout_problem(buffers, {{0, 64, 0}, 100}).empty());
  CHECK_FALSE(arena_layout_problem(buffers, {{0, 65, 0}, 192}).empty());
  CHECK_FALSE(arena_layout_problem(buffers, {{0, 64}, 128}).empty());
  // A persistent buffer meets everything.
  CHECK_FALSE(arena_layout_problem({persistent(64), live(64, 7, 7)}, {{0, 0}, 64}).empty());
}

TEST_CASE("arena: random lifetimes never share live bytes and stay within the bounds") {
  uint64_t state = 12345;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((state >> 33) % n);
  };
  for (int trial = 0; trial < 200; ++trial) {
    CAPTURE(trial);
    const int steps = 1 + next(13);
    std::vector<ArenaBuffer> buffers;
    const int count = next(40);
    for (int b = 0; b < count; ++b) {
      const int first = next(static_cast<uint64_t>(steps));
      const int last = first + next(static_cast<uint64_t>(steps - first));
      buffers.push_back({static_cast<size_t>(next(5000)), first, last, next(17) == 0});
    }
    const ArenaLayout layout = plan_arena(buffers);
    CHECK(arena_layout_problem(buffers, layout) == "");
    // At most every buffer side by side; at least the bytes live at the busiest step.
    size_t sum = 0, busiest = 0;
    for (const auto& b : buffers) sum += arena_footprint(b.bytes);
    for (int s = 0; s < steps; ++s) {
      size_t at = 0;
      for (const auto& b : buffers)
        if (b.persistent || (b.first <= s && s <= b.last)) at += arena_footprint(b.bytes);
      busiest = std::max(busiest, at);
    }
    CHECK(layout.total <= sum);
    CHECK(layout.total >= busiest);
  }
}
