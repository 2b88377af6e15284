// Learning-rate schedules against the Keras docstring formulas (tests/reference), and
// EarlyStopping / ReduceLROnPlateau on hand-made loss curves whose outcomes follow from Keras 3's
// callbacks step by step (worked out in the comments).
#include <doctest/doctest.h>

#include <vector>

#include "engine/training/epoch_callbacks.hpp"
#include "engine/training/learning_rate_schedule.hpp"
#include "tests/reference/keras_training.hpp"

namespace ref = fg::reference;

TEST_CASE("schedules: exponential, cosine with and without warmup, piecewise") {
  fg::LearningRateSpec e;
  e.kind = fg::ScheduleKind::exponential_decay;
  e.initial_learning_rate = 0.1;
  e.decay_steps = 7;
  e.decay_rate = 0.9;
  for (bool staircase : {false, true}) {
    e.staircase = staircase;
    fg::LearningRateSchedule s(e);
    for (int64_t step : {0, 1, 6, 7, 13, 127})
      CHECK(s.at(step) ==
            doctest::Approx(ref::naive_exponential_decay(0.1, 7, 0.9, staircase, step)));
  }
  fg::LearningRateSpec c;
  c.kind = fg::ScheduleKind::cosine_decay;
  c.initial_learning_rate = 0.2;
  c.decay_steps = 13;
  c.alpha = 0.1;
  fg::LearningRateSchedule cosine(c);
  for (int64_t step : {0, 1, 7, 13, 127})
    CHECK(cosine.at(step) ==
          doctest::Approx(ref::naive_cosine_decay(0.2, 13, 0.1, 0, 0, false, step)));
  CHECK(cosine.at(13) == doctest::Approx(0.02));  // alpha * initial after decay_steps
  c.warmup_target = 1.0;
  c.warmup_steps = 7;
  fg::LearningRateSchedule warm(c);
  for (int64_t step : {0, 3, 6, 7, 8, 20, 127})
    CHECK(warm.at(step) ==
          doctest::Approx(ref::naive_cosine_decay(0.2, 13, 0.1, 1.0, 7, true, step)));
  CHECK(warm.at(7) == doctest::Approx(1.0));  // the warmup target, then the decay from it
  fg::LearningRateSpec p;
  p.kind = fg::ScheduleKind::piecewise_constant;
  p.boundaries = {7, 13};
  p.values = {1.0, 0.5, 0.1};
  fg::LearningRateSchedule piecewise(p);
  // values[0] for step <= 7, values[1] for 7 < step <= 13, values[2] after (Keras docstring)
  CHECK(piecewise.at(0) == 1.0);
  CHECK(piecewise.at(7) == 1.0);
  CHECK(piecewise.at(8) == 0.5);
  CHECK(piecewise.at(13) == 0.5);
  CHECK(piecewise.at(14) == 0.1);
  fg::LearningRateSpec constant;
  constant.value = 0.3;
  fg::LearningRateSchedule k(constant);
  k.set_constant(0.03);
  CHECK(k.at(127) == 0.03);
}

TEST_CASE("early stopping: patience, min_delta, restore_best_weights bookkeeping") {
  fg::EarlyStoppingSpec spec;
  spec.monitor = "val_loss";
  spec.patience = 2;
  spec.min_delta = 0.01;
  spec.restore_best_weights = true;
  fg::EarlyStopping es(spec);
  CHECK_FALSE(es.maximizes());
  // e0 1.0: first value, best; e1 0.9 better; e2 0.895 not better by 0.01 (wait 1);
  // e3 0.8 better (wait 0); e4 0.85 (wait 1); e5 0.81 (wait 2 >= patience): stop at epoch 5
  const std::vector<double> losses = {1.0, 0.9, 0.895, 0.8, 0.85, 0.81};
  std::vector<bool> saved, stopped;
  for (size_t e = 0; e < losses.size(); ++e) {
    auto d = es.on_epoch_end(static_cast<int64_t>(e), losses[e]);
    saved.push_back(d.save_best_weights);
    stopped.push_back(d.stop);
  }
  CHECK(saved == std::vector<bool>{true, true, false, true, false, false});
  CHECK(stopped == std::vector<bool>{false, false, false, false, false, true});
  CHECK(es.state().best_epoch == 3);
  CHECK(*es.state().best == 0.8);
  CHECK(es.state().stopped_epoch == 5);
  CHECK(es.restore_at_end());
  // patience 0: the first epoch never stops (epoch > 0), the second stops if no improvement
  fg::EarlyStoppingSpec zero;
  fg::EarlyStopping z(zero);
  CHECK_FALSE(z.on_epoch_end(0, 1.0).stop);
  CHECK(z.on_epoch_end(1, 1.0).stop);
  CHECK_FALSE(z.restore_at_end());
  // resumed with a best value already known: epoch 0 never stops, even without improvement
  fg::EarlyStopping resumed(zero);
  resumed.restore({0, 0, 0, 1.0, false});
  CHECK_FALSE(resumed.on_epoch_end(0, 2.0).stop);
  CHECK(resumed.on_epoch_end(1, 2.0).stop);
}

TEST_CASE("early stopping: mode, baseline, start_from_epoch, missing values, restore state") {
  fg::EarlyStoppingSpec acc;
  acc.monitor = "val_accuracy";  // auto: accuracy goes up
  acc.patience = 1;
  fg::EarlyStopping up(acc);
  CHECK(up.maximizes());
  CHECK_FALSE(up.on_epoch_end(0, 0.5).stop);
  CHECK_FALSE(up.on_epoch_end(1, 0.6).stop);
  CHECK(up.on_epoch_end(2, 0.55).stop);
  CHECK(fg::monitor_maximizes("val_mae", fg::MonitorMode::auto_mode) == false);
  CHECK(fg::monitor_maximizes("loss", fg::MonitorMode::max));
  // baseline: improvements that do not beat the baseline do not reset wait
  fg::EarlyStoppingSpec b;
  b.monitor = "loss";
  b.patience = 2;
  b.baseline = 0.5;
  fg::EarlyStopping base(b);
  CHECK_FALSE(base.on_epoch_end(0, 0.9).stop);     // best, wait 1 (baseline not beaten)
  CHECK(base.on_epoch_end(1, 0.8).stop == false);  // best again, wait 2, but it improved: return
  CHECK(base.on_epoch_end(2, 0.85).stop);          // wait 3 >= 2
  // start_from_epoch and missing values are skipped
  fg::EarlyStoppingSpec late;
  late.start_from_epoch = 2;
  fg::EarlyStopping l(late);
  CHECK_FALSE(l.on_epoch_end(0, 5.0).stop);
  CHECK_FALSE(l.on_epoch_end(1, 6.0).stop);
  CHECK_FALSE(l.on_epoch_end(2, std::nullopt).stop);
  CHECK_FALSE(l.on_epoch_end(3, 7.0).stop);  // first counted value
  CHECK(l.on_epoch_end(4, 7.0).stop);
  // state round trip
  fg::EarlyStopping copy(late);
  copy.restore(l.state());
  CHECK(copy.state().best == l.state().best);
  CHECK(copy.state().wait == l.state().wait);
}

TEST_CASE("reduce on plateau: patience, factor, min_lr, cooldown") {
  fg::ReduceOnPlateauSpec spec;
  spec.monitor = "val_loss";
  spec.patience = 2;
  spec.factor = 0.5;
  spec.cooldown = 1;
  spec.min_lr = 0.03;
  spec.min_delta = 0.0;
  fg::ReduceLrOnPlateau r(spec);
  CHECK_FALSE(r.maximizes());
  double lr = 0.1;
  auto epoch = [&](double value) {
    auto changed = r.on_epoch_end(value, lr);
    if (changed) lr = *changed;
    return lr;
  };
  // e0 1.0 best; e1 1.0 wait 1; e2 1.0 wait 2 -> lr 0.05, cooldown 1, wait 0;
  // e3: the cooldown counts down to 0 (wait reset), then, out of cooldown, wait 1;
  // e4 wait 2 -> lr max(0.025, min_lr 0.03) = 0.03; later reductions stay at min_lr
  CHECK(epoch(1.0) == 0.1);
  CHECK(epoch(1.0) == 0.1);
  CHECK(epoch(1.0) == doctest::Approx(0.05));
  CHECK(epoch(1.0) == doctest::Approx(0.05));
  CHECK(epoch(1.0) == doctest::Approx(0.03));
  CHECK(epoch(1.0) == doctest::Approx(0.03));
  CHECK(epoch(1.0) == doctest::Approx(0.03));
  CHECK(epoch(1.0) == doctest::Approx(0.03));
  // an improvement resets wait
  fg::ReduceLrOnPlateau r2(spec);
  lr = 0.1;
  r = r2;
  CHECK(epoch(1.0) == 0.1);
  CHECK(epoch(1.0) == 0.1);
  CHECK(epoch(0.5) == 0.1);
  CHECK(epoch(0.5) == 0.1);
  CHECK(epoch(0.5) == doctest::Approx(0.05));
  // an accuracy goes up; min_delta: 0.54 does not beat 0.5 by 0.05, so patience 1 reduces
  fg::ReduceOnPlateauSpec acc;
  acc.monitor = "val_accuracy";
  acc.patience = 1;
  acc.min_delta = 0.05;
  fg::ReduceLrOnPlateau up(acc);
  CHECK(up.maximizes());
  CHECK_FALSE(up.on_epoch_end(0.5, 0.1));
  CHECK_FALSE(up.on_epoch_end(0.6, 0.1));
  auto reduced = up.on_epoch_end(0.64, 0.1);
  REQUIRE(reduced);
  CHECK(*reduced == doctest::Approx(0.01));
  CHECK_FALSE(up.on_epoch_end(std::nullopt, 0.01));  // not logged: nothing changes
  CHECK(*up.state().best == 0.6);
  CHECK(fg::monitor_maximizes("val_accuracy", fg::MonitorMode::auto_mode));
  CHECK_FALSE(fg::monitor_maximizes("val_mae", fg::MonitorMode::auto_mode));
}
